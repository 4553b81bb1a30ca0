/// <reference types="vite/client" />

/** Routes of every API method, generated at build time from vm/api/contract.ts (vite.config.ts). */
declare module 'virtual:spritely-routes' {
  import type { RouteTable } from './transport.ts';
  export const routes: RouteTable;
}

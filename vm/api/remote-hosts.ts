/**
 * Remote hosts as the API sees them: what the server, the handlers and the events stream need from
 * vm/hosts/ (which implements it; the daemon wires the two), declared here so the API layer never
 * imports the layer above it.
 */
import type http from 'node:http';
import type net from 'node:net';
import type { WebSocket, WebSocketServer } from 'ws';
import type { DaemonEvent, HostStatus, MethodInput, MethodOutput, Sprite } from './contract.ts';

export interface RemoteHostsListener {
  /** Any host's state changed: every host's status. */
  changed(hosts: HostStatus[]): void;
  /** An event of host `host`'s daemon. */
  event(host: string, event: DaemonEvent): void;
}

export interface RemoteHosts {
  list(): HostStatus[];
  get(host: string): HostStatus;
  add(input: MethodInput<'hosts.add'>): Promise<MethodOutput<'hosts.add'>>;
  remove(host: string): Promise<void>;
  /** Connected hosts with their sprites as last seen (a window that subscribes gets these first). */
  snapshots(): { host: string; sprites: Sprite[] }[];
  /** Returns the unsubscribe. */
  subscribe(listener: RemoteHostsListener): () => void;
  /** `/v1/hosts/HOST/…` (after the server's access checks): answers it and resolves true; false when the path is not a host's. */
  request(url: URL, req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean>;
  /** The same for a WebSocket upgrade: true when it took the socket; `onClient` sees the accepted client socket. */
  upgrade(url: URL, req: http.IncomingMessage, socket: net.Socket, head: Buffer, wss: WebSocketServer, onClient: (ws: WebSocket) => void): boolean;
}

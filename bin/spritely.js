#!/usr/bin/env node
// The `spritely` command: loads the TypeScript CLI through tsx (no build step after `npm ci`).
import { register } from 'tsx/esm/api';

register();
await import('../vm/cli/main.ts');

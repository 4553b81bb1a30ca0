#!/usr/bin/env node
// The `spritely-relay` command: loads the relay's TypeScript CLI through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../relay/cli.ts');

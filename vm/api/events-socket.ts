/**
 * WS /v1/events: a `hello` with every sprite, then every change (sprites, checkpoints, image builds,
 * the relay) as it happens; with remote hosts, their states (`hosts.changed`) and their daemons'
 * events (`host.event`, each connected host's `hello` first).
 */
import type { WebSocket } from 'ws';
import type { Engine } from '../engine/engine.ts';
import type { HostManager } from '../hosts/host-manager.ts';
import type { RelayLink, RelayStatus } from '../net/relay-link.ts';
import type { DaemonEvent, EventMessage, HostStatus } from './contract.ts';

export function handleEventsSocket(ws: WebSocket, engine: Engine, relay?: RelayLink, hosts?: HostManager): void {
  const send = (e: EventMessage) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(e));
  };
  const onSprite = (sprite: any) => send({ type: 'sprite.changed', sprite });
  const onRemoved = (name: string) => send({ type: 'sprite.removed', name });
  const onProgress = (p: any) => send({ type: 'image.progress', ...p });
  const onCheckpoints = (name: string, checkpoints: any[]) => send({ type: 'checkpoints.changed', name, checkpoints });
  engine.on('checkpoints', onCheckpoints);
  engine.on('sprite', onSprite);
  engine.on('removed', onRemoved);
  engine.on('imageProgress', onProgress);
  const onRelay = (status: RelayStatus) => send({ type: 'relay.changed', relay: status });
  relay?.on('changed', onRelay);
  ws.on('close', () => {
    relay?.off('changed', onRelay);
    engine.off('sprite', onSprite);
    engine.off('removed', onRemoved);
    engine.off('imageProgress', onProgress);
    engine.off('checkpoints', onCheckpoints);
  });
  ws.on('error', () => {});
  send({ type: 'hello', sprites: engine.list() });
  if (hosts) forwardHosts(ws, hosts, send);
}

function forwardHosts(ws: WebSocket, hosts: HostManager, send: (e: EventMessage) => void): void {
  const onChanged = (list: HostStatus[]) => send({ type: 'hosts.changed', hosts: list });
  const onEvent = (host: string, event: DaemonEvent) => send({ type: 'host.event', host, event });
  hosts.on('changed', onChanged);
  hosts.on('event', onEvent);
  ws.on('close', () => {
    hosts.off('changed', onChanged);
    hosts.off('event', onEvent);
  });
  const list = hosts.list();
  if (!list.length) return;
  send({ type: 'hosts.changed', hosts: list });
  for (const { host, sprites } of hosts.snapshots()) send({ type: 'host.event', host, event: { type: 'hello', sprites } });
}

/**
 * WS /v1/events: a `hello` with every sprite, then every change (sprites, checkpoints, image builds,
 * the relay) as it happens; with remote hosts, their states (`hosts.changed`) and their daemons'
 * events (`host.event`, each connected host's `hello` first). Every event is typed by the
 * contract's EventMessage and checked against it before it is sent, as every method's input is.
 */
import type { WebSocket } from 'ws';
import type { Engine } from '../engine/engine.ts';
import type { RelayLink } from '../net/relay-link.ts';
import { EventMessage, type Checkpoint, type ImageProgress, type RelayStatus, type Sprite } from './contract.ts';
import type { RemoteHosts } from './remote-hosts.ts';

export function handleEventsSocket(ws: WebSocket, engine: Engine, relay?: RelayLink, hosts?: RemoteHosts): void {
  const send = (e: EventMessage) => {
    const checked = EventMessage.safeParse(e);
    if (!checked.success) {
      engine.log(`events: not sending a ${e.type} event the contract refuses: ${checked.error.issues[0]?.path.join('.')}: ${checked.error.issues[0]?.message}`);
      return;
    }
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(checked.data));
  };
  const onSprite = (sprite: Sprite) => send({ type: 'sprite.changed', sprite });
  const onRemoved = (name: string) => send({ type: 'sprite.removed', name });
  const onProgress = (p: ImageProgress) => send({ type: 'image.progress', ...p });
  const onCheckpoints = (name: string, checkpoints: Checkpoint[]) => send({ type: 'checkpoints.changed', name, checkpoints });
  const onRelay = (status: RelayStatus) => send({ type: 'relay.changed', relay: status });
  engine.on('checkpoints', onCheckpoints);
  engine.on('sprite', onSprite);
  engine.on('removed', onRemoved);
  engine.on('imageProgress', onProgress);
  relay?.on('changed', onRelay);
  const unsubscribeHosts = hosts?.subscribe({
    changed: (list) => send({ type: 'hosts.changed', hosts: list }),
    event: (host, event) => send({ type: 'host.event', host, event }),
  });
  ws.on('close', () => {
    relay?.off('changed', onRelay);
    engine.off('sprite', onSprite);
    engine.off('removed', onRemoved);
    engine.off('imageProgress', onProgress);
    engine.off('checkpoints', onCheckpoints);
    unsubscribeHosts?.();
  });
  ws.on('error', () => {});
  send({ type: 'hello', sprites: engine.list() });
  const list = hosts?.list() ?? [];
  if (!list.length) return;
  send({ type: 'hosts.changed', hosts: list });
  for (const { host, sprites } of hosts!.snapshots()) send({ type: 'host.event', host, event: { type: 'hello', sprites } });
}

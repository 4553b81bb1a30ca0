/**
 * WS /v1/events: a `hello` with every sprite, then every change (sprites, checkpoints, image builds,
 * the relay) as it happens. Every event is typed by the contract's DaemonEvent and checked against
 * it before it is sent, as every method's input is.
 */
import type { WebSocket } from 'ws';
import type { Engine } from '../engine/engine.ts';
import type { RelayLink } from '../net/relay-link.ts';
import { DaemonEvent, type Checkpoint, type ImageProgress, type RelayStatus, type Sprite } from './contract.ts';

export function handleEventsSocket(ws: WebSocket, engine: Engine, relay?: RelayLink): void {
  const send = (e: DaemonEvent) => {
    const checked = DaemonEvent.safeParse(e);
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
  ws.on('close', () => {
    relay?.off('changed', onRelay);
    engine.off('sprite', onSprite);
    engine.off('removed', onRemoved);
    engine.off('imageProgress', onProgress);
    engine.off('checkpoints', onCheckpoints);
  });
  ws.on('error', () => {});
  send({ type: 'hello', sprites: engine.list() });
}

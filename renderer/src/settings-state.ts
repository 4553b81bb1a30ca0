/**
 * The daemon-wide settings as the app sees them — the config (idle timeout, memory limit), the
 * images, the usage table — and the actions that read and change them (with the relay, the
 * network policy, a sprite's idle timeout and its ssh-config block). Same pattern as store.ts:
 * exported pure transitions, and actions that call the daemon and turn its errors into toasts in
 * its own words. The store composes these into its own state and actions.
 */
import type { Config, RelayStatus } from '../../vm/api/contract.ts';
import { hostOfKey } from './sprite-key.ts';
import type { MethodOutput, Transport } from './transport.ts';

export type { Config };
export type Image = MethodOutput<'images.list'>[number];
export type UsageRow = MethodOutput<'sprites.usage'>[number];

/** Daemon-wide operations this window has under way (buttons say so and wait). */
export type Work = 'config' | 'image' | 'relay' | 'usage';

export interface SettingsState {
  /** What the main area shows: the selected sprite, or the settings page over it (terminals stay open). */
  view: 'sprite' | 'settings';
  config: Config | null;
  images: Image[] | null;
  usage: UsageRow[] | null;
  working: Partial<Record<Work, true>>;
  relay: RelayStatus | null;
}

export const initialSettings: Omit<SettingsState, 'relay'> = { view: 'sprite', config: null, images: null, usage: null, working: {} };

export function showView<S extends SettingsState>(s: S, view: SettingsState['view']): S {
  return s.view === view ? s : { ...s, view };
}

export function setWorking<S extends SettingsState>(s: S, work: Work, on: boolean): S {
  if (!!s.working[work] === on) return s;
  const working = { ...s.working };
  if (on) working[work] = true;
  else delete working[work];
  return { ...s, working };
}

export function setConfig<S extends SettingsState>(s: S, config: Config): S {
  return { ...s, config };
}

export function setImages<S extends SettingsState>(s: S, images: Image[]): S {
  return { ...s, images };
}

export function setUsage<S extends SettingsState>(s: S, usage: UsageRow[]): S {
  return { ...s, usage };
}

export function setRelay<S extends SettingsState>(s: S, relay: RelayStatus): S {
  return { ...s, relay };
}

/** Guest RAM of the awake sprites: what the memory limit is measured against. */
export function awakeMemory(sprites: Record<string, { state: string; memoryMiB: number }>): { mib: number; count: number } {
  const awake = Object.values(sprites).filter((s) => s.state === 'running');
  return { mib: awake.reduce((sum, s) => sum + s.memoryMiB, 0), count: awake.length };
}

/** The answer of `setNetwork`: null when applied, else the daemon's refusal. */
export type Refusal = string | null;

export interface SettingsActions {
  openSettings(): void;
  closeSettings(): void;
  /** Reads everything the settings page shows (those the daemon has). */
  loadSettings(): Promise<void>;
  loadConfig(): Promise<void>;
  loadImages(): Promise<void>;
  loadUsage(): Promise<void>;
  loadRelay(): Promise<void>;
  /** Seconds (0 = never); with `sprite`, that sprite's own (null: back to the daemon-wide one). */
  setIdleTimeout(seconds: number | null, sprite?: string): Promise<boolean>;
  /** MiB; 0 = the default. */
  setMemoryLimit(mib: number): Promise<boolean>;
  /** Whether the daemon keeps a warm spare per used machine shape. */
  setWarmSpare(on: boolean): Promise<boolean>;
  /** How many checkpoints a sprite may have mounted at once (1–16). */
  setCheckpointMounts(n: number): Promise<boolean>;
  /** Applies a policy; a refusal comes back (for the editor to show beside the entries), not as a toast. */
  setNetwork(name: string, policy: string): Promise<Refusal>;
  buildImage(force?: boolean): Promise<boolean>;
  connectRelay(input: { url: string; token: string; ca?: string }): Promise<boolean>;
  disconnectRelay(): Promise<boolean>;
  /** The block `spritely ssh-config NAME` prints, or null after a toast saying why not. */
  sshConfig(name: string): Promise<string | null>;
}

export interface SettingsDeps<S extends SettingsState> {
  transport: Transport;
  apply(fn: (s: S) => S): void;
  get(): S;
  toast(message: string, kind?: 'error' | 'info'): void;
  /** Re-reads one sprite after a change (its event can lag the answer). */
  refreshSprite(name: string): Promise<void>;
  clearImageProgress(): void;
}

const message = (err: unknown) => (err as Error)?.message ?? String(err);

export function createSettingsActions<S extends SettingsState>(d: SettingsDeps<S>): SettingsActions {
  const { transport, apply } = d;
  /** Runs one daemon-wide operation: marked as under way, errors as toasts; true when it worked. */
  const work = async (w: Work, fn: () => Promise<unknown>): Promise<boolean> => {
    apply((s) => setWorking(s, w, true));
    try {
      await fn();
      return true;
    } catch (err) {
      d.toast(message(err));
      return false;
    } finally {
      apply((s) => setWorking(s, w, false));
    }
  };
  const read = async (fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      d.toast(message(err));
    }
  };
  const actions: SettingsActions = {
    openSettings: () => apply((s) => showView(s, 'settings')),
    closeSettings: () => apply((s) => showView(s, 'sprite')),
    loadSettings: async () => {
      const loads: Promise<void>[] = [];
      if (transport.has('config.get')) loads.push(actions.loadConfig());
      if (transport.has('images.list')) loads.push(actions.loadImages());
      if (transport.has('sprites.usage')) loads.push(actions.loadUsage());
      if (transport.has('relay.status')) loads.push(actions.loadRelay());
      await Promise.all(loads);
    },
    loadConfig: () =>
      read(async () => {
        const config = await transport.call('config.get');
        apply((s) => setConfig(s, config));
      }),
    loadImages: () =>
      read(async () => {
        const images = await transport.call('images.list');
        apply((s) => setImages(s, images));
      }),
    loadUsage: async () => {
      await work('usage', async () => {
        const usage = await transport.call('sprites.usage');
        apply((s) => setUsage(s, usage));
      });
    },
    loadRelay: () =>
      read(async () => {
        const relay = await transport.call('relay.status');
        apply((s) => setRelay(s, relay));
      }),
    setIdleTimeout: (seconds, sprite) =>
      work('config', async () => {
        const config = await transport.call('config.set', { idleTimeoutSec: seconds, ...(sprite ? { sprite } : {}) });
        // A remote sprite's key routes the call to its host, which answers with its own config: not this computer's.
        if (!sprite || !hostOfKey(sprite)) apply((s) => setConfig(s, config));
        if (sprite) await d.refreshSprite(sprite);
      }),
    setMemoryLimit: (mib) =>
      work('config', async () => {
        const config = await transport.call('config.set', { memoryLimitMiB: mib });
        apply((s) => setConfig(s, config));
      }),
    setWarmSpare: (on) =>
      work('config', async () => {
        const config = await transport.call('config.set', { warmSpare: on });
        apply((s) => setConfig(s, config));
      }),
    setCheckpointMounts: (n) =>
      work('config', async () => {
        const config = await transport.call('config.set', { checkpointMounts: n });
        apply((s) => setConfig(s, config));
      }),
    setNetwork: async (name, policy) => {
      try {
        await transport.call('sprites.network', { name, policy });
        await d.refreshSprite(name);
        return null;
      } catch (err) {
        return message(err);
      }
    },
    buildImage: async (force) => {
      const ok = await work('image', async () => {
        await transport.call('images.build', force ? { force: true } : {});
        await actions.loadImages();
      });
      d.clearImageProgress();
      return ok;
    },
    connectRelay: ({ url, token, ca }) =>
      work('relay', async () => {
        const relay = await transport.call('relay.connect', { url, token, ...(ca ? { ca } : {}) });
        apply((s) => setRelay(s, relay));
        if (relay.status === 'unauthorized') throw new Error(`The relay refused the token${relay.reason ? ` (${relay.reason})` : ''}. Check it, or ask the relay's owner for a new one (spritely-relay token add).`);
      }),
    disconnectRelay: () =>
      work('relay', async () => {
        await transport.call('relay.disconnect');
        await actions.loadRelay();
      }),
    sshConfig: async (name) => {
      try {
        return (await transport.call('sprites.sshConfig', { name })).config;
      } catch (err) {
        d.toast(message(err));
        return null;
      }
    },
  };
  return actions;
}

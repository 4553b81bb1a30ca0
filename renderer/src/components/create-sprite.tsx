/**
 * Create in one click: a suggested name (editable) and a Create button; sizes are folded away.
 * While the daemon works, the first-use image build reports its progress here.
 */
import { forwardRef, useImperativeHandle, useRef, useState } from 'react';
import { parseSpriteKey, spriteKey } from '../sprite-key.ts';
import { nameProblem, suggestName, type CreateOptions } from '../store.ts';
import { useActions, useApp } from './store-context.tsx';

export interface CreateSpriteHandle {
  focus(): void;
}

const MEMORY = [512, 1024, 2048, 4096, 8192];
const CPUS = [1, 2, 4, 8];

export const CreateSprite = forwardRef<CreateSpriteHandle>(function CreateSprite(_props, ref) {
  const sprites = useApp((s) => s.sprites);
  const pending = useApp((s) => s.pending);
  const progress = useApp((s) => s.imageProgress);
  const hosts = useApp((s) => s.hosts);
  const actions = useActions();
  /** Where the new sprite goes: null = this computer, else a remote host's name. */
  const [host, setHost] = useState<string | null>(null);
  const [name, setName] = useState(() => suggestName(Object.keys(sprites)));
  const [touched, setTouched] = useState(false);
  const [memoryMiB, setMemory] = useState<number | ''>('');
  const [cpus, setCpus] = useState<number | ''>('');
  const [diskGiB, setDisk] = useState<number | ''>('');
  const input = useRef<HTMLInputElement>(null);
  useImperativeHandle(ref, () => ({ focus: () => (input.current?.focus(), input.current?.select()) }), []);

  const creating = Object.keys(pending).find((n) => pending[n] === 'create');
  const onHost = host && hosts.some((h) => h.name === host) ? host : null;
  const taken = !!sprites[spriteKey(onHost, name)];
  const problem = touched ? nameProblem(name) ?? (taken ? `“${name}” already exists.` : null) : null;

  const submit = async () => {
    const n = name.trim();
    const key = spriteKey(onHost, n);
    if (nameProblem(n) || sprites[key] || creating) {
      setTouched(true);
      return;
    }
    const opts: CreateOptions = {};
    if (memoryMiB) opts.memoryMiB = memoryMiB;
    if (cpus) opts.cpus = cpus;
    if (diskGiB) opts.diskGiB = diskGiB;
    setTouched(false);
    setName(suggestName([...Object.keys(sprites).map((k) => parseSpriteKey(k).name), n]));
    await actions.createSprite(key, opts);
  };

  return (
    <form
      className="create"
      aria-label="Create a sprite"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      <div className="create-row">
        <input
          ref={input}
          className="name-input"
          aria-label="Name of the new sprite"
          value={name}
          spellCheck={false}
          autoComplete="off"
          onChange={(e) => {
            setName(e.target.value.toLowerCase());
            setTouched(true);
          }}
          aria-invalid={!!problem}
        />
        <button type="submit" className="primary" disabled={!!creating} title="Create (Alt+Shift+N)">
          Create
        </button>
      </div>
      {problem && <div className="field-error">{problem}</div>}
      {hosts.length > 0 && (
        <label className="create-host">
          On
          <select aria-label="Where to create it" value={onHost ?? ''} onChange={(e) => setHost(e.target.value || null)}>
            <option value="">this computer</option>
            {hosts.map((h) => (
              <option key={h.name} value={h.name} disabled={h.state !== 'connected'}>
                {h.name}
                {h.accel ? ` (${h.accel.toUpperCase()})` : ''}
                {h.state !== 'connected' ? ` — ${h.state}` : ''}
              </option>
            ))}
          </select>
        </label>
      )}
      <details className="size-options">
        <summary>Size</summary>
        <label>
          Memory
          <select value={memoryMiB} onChange={(e) => setMemory(e.target.value ? Number(e.target.value) : '')}>
            <option value="">default</option>
            {MEMORY.map((m) => (
              <option key={m} value={m}>
                {m >= 1024 ? `${m / 1024} GiB` : `${m} MiB`}
              </option>
            ))}
          </select>
        </label>
        <label>
          CPUs
          <select value={cpus} onChange={(e) => setCpus(e.target.value ? Number(e.target.value) : '')}>
            <option value="">default</option>
            {CPUS.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </label>
        <label>
          Disk
          <select value={diskGiB} onChange={(e) => setDisk(e.target.value ? Number(e.target.value) : '')}>
            <option value="">100 GiB</option>
            {[200, 500, 1000].map((d) => (
              <option key={d} value={d}>
                {d} GiB
              </option>
            ))}
          </select>
        </label>
      </details>
      {creating && (
        <div className="create-progress" role="status" aria-live="polite">
          <div>
            Creating <strong>{parseSpriteKey(creating).name}</strong>
            {parseSpriteKey(creating).host ? ` on ${parseSpriteKey(creating).host}` : ''}…
          </div>
          {progress && (
            <>
              <div className="progress-text">
                {progress.phase}: {progress.message}
              </div>
              <div className="progress-bar" aria-hidden>
                <div className={progress.fraction === undefined ? 'indeterminate' : ''} style={progress.fraction !== undefined ? { width: `${Math.round(progress.fraction * 100)}%` } : undefined} />
              </div>
            </>
          )}
        </div>
      )}
    </form>
  );
});

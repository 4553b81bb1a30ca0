/**
 * The daemon-wide settings, one page over the main area (terminals stay open underneath): the
 * relay, when sprites sleep, the memory limit, how many checkpoints a sprite may have mounted, images, and what every sprite has used — each
 * section shown when the daemon has its methods. Escape or Done goes back to the sprite, and
 * focus returns to what opened the page.
 */
import { useEffect, useRef } from 'react';
import { useActions, useApp } from '../store-context.tsx';
import { IdleSection } from './idle-section.tsx';
import { ImagesSection } from './images-section.tsx';
import { MemorySection } from './memory-section.tsx';
import { MountsSection } from './mounts-section.tsx';
import { RelaySection } from './relay-section.tsx';
import { UsageSection } from './usage-section.tsx';

export function SettingsView() {
  const actions = useActions();
  const transport = useApp((s) => s.transport);
  const heading = useRef<HTMLHeadingElement>(null);
  const has = (m: string) => transport.has(m);

  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    heading.current?.focus();
    void actions.loadSettings();
    return () => {
      if (before?.isConnected) before.focus();
    };
  }, [actions]);

  return (
    <section className="settings" aria-labelledby="settings-title" onKeyDown={(e) => e.key === 'Escape' && !e.defaultPrevented && actions.closeSettings()}>
      <header className="settings-head">
        <h1 id="settings-title" ref={heading} tabIndex={-1}>
          Settings
        </h1>
        <button className="ghost" onClick={actions.closeSettings}>
          Done
        </button>
      </header>
      <div className="settings-body">
        {has('relay.status') && <RelaySection />}
        {has('config.get') && has('config.set') && <IdleSection />}
        {has('config.get') && has('config.set') && <MemorySection />}
        {has('config.get') && has('config.set') && <MountsSection />}
        {has('images.list') && <ImagesSection />}
        {has('sprites.usage') && <UsageSection />}
      </div>
    </section>
  );
}

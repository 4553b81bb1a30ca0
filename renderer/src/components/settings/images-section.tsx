/**
 * Guest images (`spritely image list` / `image build`): which are built, their size, the
 * default; building the default one (nothing to do when it exists) or rebuilding it, with the
 * daemon's `image.progress` events as it goes.
 */
import { useState } from 'react';
import { formatAge } from '../../format.ts';
import { formatBytes } from '../../format-bytes.ts';
import { ConfirmDialog } from '../confirm-dialog.tsx';
import { useActions, useApp } from '../store-context.tsx';

export function ImagesSection() {
  const images = useApp((s) => s.images);
  const building = useApp((s) => !!s.working.image);
  const progress = useApp((s) => s.imageProgress);
  const canBuild = useApp((s) => s.transport.has('images.build'));
  const actions = useActions();
  const [rebuild, setRebuild] = useState(false);
  const hasDefault = !!images?.some((i) => i.default);

  return (
    <section className="settings-section" aria-labelledby="images-title">
      <h2 id="images-title">Images</h2>
      <p className="muted">A sprite starts from an image: Debian with a saved, booted machine state, built here from Debian’s packages once.</p>
      {!images ? (
        <p className="muted">Loading…</p>
      ) : images.length === 0 ? (
        <p>No image built yet: the first sprite builds one (a few minutes), or build it now.</p>
      ) : (
        <table className="table" aria-label="Images">
          <thead>
            <tr>
              <th>Image</th>
              <th className="num">Size</th>
              <th>Default</th>
              <th>Built</th>
            </tr>
          </thead>
          <tbody>
            {images.map((i) => (
              <tr key={i.id} data-image={i.id}>
                <td>
                  <code>{i.id}</code>
                </td>
                <td className="num">{formatBytes(i.sizeBytes)}</td>
                <td>{i.default ? 'yes' : ''}</td>
                <td>{formatAge(i.createdAt, Date.now())}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {canBuild && (
        <div className="form-buttons">
          <button className={hasDefault ? 'ghost' : 'primary'} disabled={building} onClick={() => void actions.buildImage()}>
            {hasDefault ? 'Check the default image' : 'Build the default image'}
          </button>
          {hasDefault && (
            <button className="ghost" disabled={building} onClick={() => setRebuild(true)}>
              Rebuild…
            </button>
          )}
        </div>
      )}
      {building && (
        <div className="build-progress" role="status" aria-live="polite">
          <div>{progress ? `${progress.phase}: ${progress.message}` : 'Asking the daemon…'}</div>
          <div className="progress-bar" aria-hidden>
            <div className={progress?.fraction === undefined ? 'indeterminate' : ''} style={progress?.fraction !== undefined ? { width: `${Math.round(progress.fraction * 100)}%` } : undefined} />
          </div>
        </div>
      )}
      {rebuild && (
        <ConfirmDialog
          title="Rebuild the default image?"
          confirmLabel="Rebuild"
          onCancel={() => setRebuild(false)}
          onConfirm={() => {
            setRebuild(false);
            void actions.buildImage(true);
          }}
        >
          It is built again from Debian’s packages (a few minutes, and a download). Existing sprites keep the image they were made from.
        </ConfirmDialog>
      )}
    </section>
  );
}

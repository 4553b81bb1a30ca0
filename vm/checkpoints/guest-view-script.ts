/**
 * The guest's half of showing a checkpoint inside a sprite: the daemon attaches the checkpoint as a
 * disk (`Machine.attachSnapshot`), then runs this script through the guest's control channel to
 * mount it at /.spritely/checkpoints/ID — read-only, no setuid, no devices. It ships with the
 * daemon (sent with each call, not baked into the image), so it always matches the daemon that
 * plugged the disk in, old images included. POSIX sh and tools every Debian has (mount, awk).
 *
 *   mount ID SERIAL   waits (≤ 20 s) for the disk with that serial, mounts it; prints the directory
 *   umount ID [lazy]  unmounts (exit 16 when it is in use, unless lazy) and removes the directory
 *   reset             unmounts everything under the root lazily (a restored state still lists
 *                     mounts of disks that are gone) and removes the directories
 *
 * Its arguments come from the daemon, but are checked anyway: an id is vN, a serial spritely-vN.
 */
export const VIEW_ROOT = '/.spritely/checkpoints';

export const GUEST_VIEW_SCRIPT = `set -eu
root=${VIEW_ROOT}
valid_id() {
  case $1 in v[1-9]*) ;; *) return 1 ;; esac
  case \${1#v} in *[!0-9]*) return 1 ;; esac
  [ \${#1} -le 10 ]
}
mounted_dev() { awk -v d="$1" '$2 == d { dev = $1 } END { if (dev == "") exit 1; print dev }' /proc/mounts; }
op=\${1:-}
case $op in
mount)
  id=$2 serial=$3
  valid_id "$id" || { echo "bad checkpoint id" >&2; exit 2; }
  [ "$serial" = "spritely-$id" ] || { echo "bad serial" >&2; exit 2; }
  dir=$root/$id
  dev=/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_$serial
  i=0
  while [ ! -b "$dev" ]; do
    i=$((i + 1))
    [ $i -le 200 ] || { echo "the disk of $id did not appear in the guest" >&2; exit 3; }
    sleep 0.1
  done
  real=$(readlink -f "$dev")
  mkdir -p "$dir"
  if cur=$(mounted_dev "$dir"); then
    [ "$cur" = "$real" ] && { echo "$dir"; exit 0; }
    umount -l "$dir" 2>/dev/null || true
  fi
  mount -t ext4 -o ro,nosuid,nodev "$real" "$dir"
  echo "$dir"
  ;;
umount)
  id=$2
  valid_id "$id" || { echo "bad checkpoint id" >&2; exit 2; }
  dir=$root/$id
  if mounted_dev "$dir" >/dev/null; then
    if [ "\${3:-}" = lazy ]; then umount -l "$dir"
    else umount "$dir" 2>/dev/null || { echo "in use" >&2; exit 16; }
    fi
  fi
  rmdir "$dir" 2>/dev/null || true
  ;;
reset)
  awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | while read -r d; do umount -l "$d" 2>/dev/null || true; done
  for d in "$root"/v*; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
  ;;
*) echo "usage: mount ID SERIAL | umount ID [lazy] | reset" >&2; exit 2 ;;
esac
`;

/** The argv that runs the script in the guest with `args`. */
export function viewCommand(...args: string[]): { path: string; args: string[] } {
  return { path: '/bin/sh', args: ['-c', GUEST_VIEW_SCRIPT, 'checkpoint-view', ...args] };
}

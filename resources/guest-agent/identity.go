// A sprite restored from a shared RAM state is a copy of the golden machine. One IDENTITY
// request makes it its own: hostname and /etc/hosts, machine-id, the SSH host key pair made on
// the host, the authorized key, RNG seed, clock, and optionally growing the file system. It
// replaces the apply-identity script: no fork per step, so it takes milliseconds, not seconds,
// under emulation. Everything is validated before anything changes.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

type identityRequest struct {
	Hostname       *string `json:"hostname"`
	MachineID      *string `json:"machineId"`
	HostKey        *string `json:"hostKey"`
	HostKeyPub     *string `json:"hostKeyPub"`
	AuthorizedKeys *string `json:"authorizedKeys"`
	Seed           *string `json:"seed"`   // base64
	TimeNs         *string `json:"timeNs"` // unix time in nanoseconds, decimal
	Resize         *struct {
		Device   string `json:"device"`
		MinBytes uint64 `json:"minBytes"`
	} `json:"resize"`
}

type identityResult struct {
	OK    bool               `json:"ok"`
	Error string             `json:"error,omitempty"`
	Ms    float64            `json:"ms"`
	Steps map[string]float64 `json:"steps,omitempty"`
}

var (
	hostnameRe  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	machineIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)
	deviceRe    = regexp.MustCompile(`^/dev/[a-z][a-z0-9]*$`)
)

const (
	maxSeedBytes   = 4096
	resizeWaitMax  = 10 * time.Second
	sshdReloadWait = 10 * time.Second
)

func applyIdentityJSON(payload []byte, root string) identityResult {
	t0 := time.Now()
	var req identityRequest
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return identityResult{Error: fmt.Sprintf("the identity is not valid JSON of the expected shape: %v", err)}
	}
	steps, err := applyIdentity(&req, root)
	res := identityResult{OK: err == nil, Steps: steps, Ms: ms(time.Since(t0))}
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func validateIdentity(r *identityRequest) (seed []byte, clock *time.Time, err error) {
	if r.Hostname != nil && !hostnameRe.MatchString(*r.Hostname) {
		return nil, nil, fmt.Errorf("invalid hostname %q (want a DNS label: [a-z0-9-], 1-63, no leading or trailing '-')", *r.Hostname)
	}
	if r.MachineID != nil && !machineIDRe.MatchString(*r.MachineID) {
		return nil, nil, errors.New("invalid machineId (want 32 lowercase hex digits)")
	}
	if (r.HostKey == nil) != (r.HostKeyPub == nil) {
		return nil, nil, errors.New("hostKey and hostKeyPub must be given together")
	}
	if r.HostKey != nil {
		if !strings.HasPrefix(*r.HostKey, "-----BEGIN OPENSSH PRIVATE KEY-----\n") {
			return nil, nil, errors.New("hostKey is not an OpenSSH private key")
		}
		if !strings.HasPrefix(*r.HostKeyPub, "ssh-ed25519 ") || strings.ContainsAny(strings.TrimRight(*r.HostKeyPub, "\n"), "\n\x00") {
			return nil, nil, errors.New("hostKeyPub is not one ssh-ed25519 public key")
		}
	}
	if r.AuthorizedKeys != nil && strings.IndexByte(*r.AuthorizedKeys, 0) >= 0 {
		return nil, nil, errors.New("authorizedKeys contains a NUL byte")
	}
	if r.Seed != nil {
		if seed, err = base64.StdEncoding.DecodeString(*r.Seed); err != nil || len(seed) == 0 || len(seed) > maxSeedBytes {
			return nil, nil, fmt.Errorf("seed must be 1..%d bytes of base64", maxSeedBytes)
		}
	}
	if r.TimeNs != nil {
		ns, err := strconv.ParseInt(*r.TimeNs, 10, 64)
		if err != nil || ns < 1e15 || len(*r.TimeNs) != len(strconv.FormatInt(ns, 10)) {
			return nil, nil, errors.New("invalid timeNs (want unix time in nanoseconds, decimal)")
		}
		t := time.Unix(0, ns)
		clock = &t
	}
	if r.Resize != nil && !deviceRe.MatchString(r.Resize.Device) {
		return nil, nil, fmt.Errorf("invalid resize device %q", r.Resize.Device)
	}
	return seed, clock, nil
}

// applyIdentity validates everything, then applies it. With root set (tests) files go under
// root and the live actions are skipped.
func applyIdentity(r *identityRequest, root string) (map[string]float64, error) {
	seed, clock, err := validateIdentity(r)
	if err != nil {
		return nil, err
	}
	live := root == ""
	at := func(p string) string { return filepath.Join(root, p) }
	steps := map[string]float64{}
	var mu sync.Mutex
	step := func(name string, f func() error) error {
		t := time.Now()
		err := f()
		mu.Lock()
		steps[name] = ms(time.Since(t))
		mu.Unlock()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	if seed != nil && live {
		if err := step("seed", func() error { return addEntropy(seed) }); err != nil {
			return steps, err
		}
	}
	if clock != nil && live {
		if err := step("clock", func() error {
			tv := syscall.NsecToTimeval(clock.UnixNano())
			return syscall.Settimeofday(&tv)
		}); err != nil {
			return steps, err
		}
	}
	// The file steps touch different files; right after a restore the guest's page cache is
	// empty and every one of them waits for the disk, so they run at the same time.
	var files []func() error
	if r.Hostname != nil {
		files = append(files, func() error { return step("hostname", func() error { return setHostname(*r.Hostname, at, live) }) })
	}
	if r.MachineID != nil {
		files = append(files, func() error {
			return step("machineId", func() error {
				if live {
					if err := unmountIfMounted("/etc/machine-id"); err != nil {
						return err
					}
				}
				return writeFile(at("/etc/machine-id"), []byte(*r.MachineID+"\n"), 0o444)
			})
		})
	}
	if r.HostKey != nil {
		files = append(files, func() error {
			if err := step("hostKey", func() error { return setHostKey(*r.HostKey, *r.HostKeyPub, at) }); err != nil || !live {
				return err
			}
			return step("sshd", reloadListeningSshd)
		})
	}
	if r.AuthorizedKeys != nil {
		files = append(files, func() error {
			return step("authorizedKeys", func() error {
				if err := os.MkdirAll(at("/root/.ssh"), 0o700); err != nil {
					return err
				}
				return writeFile(at("/root/.ssh/authorized_keys"), []byte(strings.TrimRight(*r.AuthorizedKeys, "\n")+"\n"), 0o600)
			})
		})
	}
	errs := make(chan error, len(files))
	for _, f := range files {
		go func(f func() error) { errs <- f() }(f)
	}
	var first error
	for range files {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return steps, first
	}
	if r.Resize != nil && live {
		if err := step("resize", func() error { return growFilesystem(r.Resize.Device, r.Resize.MinBytes) }); err != nil {
			return steps, err
		}
	}
	return steps, nil
}

func setHostname(name string, at func(string) string, live bool) error {
	if err := writeFile(at("/etc/hostname"), []byte(name+"\n"), 0o644); err != nil {
		return err
	}
	var kept []byte
	if old, err := os.ReadFile(at("/etc/hosts")); err == nil {
		for _, line := range strings.SplitAfter(string(old), "\n") {
			if line == "" {
				continue
			}
			f := strings.Fields(line)
			if len(f) > 0 && f[0] == "127.0.1.1" {
				continue
			}
			kept = append(kept, line...)
			if !strings.HasSuffix(line, "\n") {
				kept = append(kept, '\n')
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	kept = append(kept, "127.0.1.1\t"+name+"\n"...)
	if err := writeFile(at("/etc/hosts"), kept, 0o644); err != nil {
		return err
	}
	if live {
		return syscall.Sethostname([]byte(name))
	}
	return nil
}

func setHostKey(priv, pub string, at func(string) string) error {
	old, _ := filepath.Glob(at("/etc/ssh/ssh_host_*"))
	for _, p := range old {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.MkdirAll(at("/etc/ssh"), 0o755); err != nil {
		return err
	}
	if err := writeFile(at("/etc/ssh/ssh_host_ed25519_key"), []byte(priv), 0o600); err != nil {
		return err
	}
	return writeFile(at("/etc/ssh/ssh_host_ed25519_key.pub"), []byte(strings.TrimRight(pub, "\n")+"\n"), 0o644)
}

// writeFile replaces a file's content by writing over it and then cutting it to length — not
// with a temp file and rename, nor O_TRUNC: ext4 (auto_da_alloc) flushes a file replaced those
// ways to the disk at once, which under emulation on a fresh qcow2 overlay cost tens of
// milliseconds per file (measured); written over, the data goes out with normal writeback.
// Identity runs before anyone uses these files, so nobody sees them half-written.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return err
	}
	_, werr := f.WriteAt(data, 0)
	if werr == nil {
		werr = f.Truncate(int64(len(data)))
	}
	if werr == nil {
		werr = f.Chmod(mode)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}

// unmountIfMounted: systemd bind-mounts a transient id over an empty /etc/machine-id at boot.
func unmountIfMounted(target string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && fields[4] == target {
			return syscall.Unmount(target, 0)
		}
	}
	return sc.Err()
}

// addEntropy mixes the seed into the kernel's pool and credits it (RNDADDENTROPY, root only);
// a plain write, which mixes without crediting, is the fallback.
func addEntropy(seed []byte) error {
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	const rndAddEntropy = 0x40085203
	buf := make([]byte, 8+len(seed))
	*(*int32)(unsafe.Pointer(&buf[0])) = int32(8 * len(seed))
	*(*int32)(unsafe.Pointer(&buf[4])) = int32(len(seed))
	copy(buf[8:], seed)
	if ioctl(f, rndAddEntropy, unsafe.Pointer(&buf[0])) == nil {
		return nil
	}
	_, err = f.Write(seed)
	return err
}

// reloadListeningSshd: with the image's per-connection sshd nothing needs reloading; if someone
// enabled ssh.service again, its listener only reads host keys at start and re-executes on
// SIGHUP, so send that and wait for the new listener.
func reloadListeningSshd() error {
	b, err := os.ReadFile("/run/sshd.pid")
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 || syscall.Kill(pid, 0) != nil {
		return nil
	}
	old := sshListenerInode()
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("cannot signal sshd (%d): %w", pid, err)
	}
	deadline := time.Now().Add(sshdReloadWait)
	for time.Now().Before(deadline) {
		if n := sshListenerInode(); n != "" && n != old {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("sshd did not come back after SIGHUP")
}

// sshListenerInode: the inode of the IPv4 socket listening on port 22, or "".
func sshListenerInode() string {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && strings.HasSuffix(f[1], ":0016") && f[3] == "0A" {
			return f[9]
		}
	}
	return ""
}

// growFilesystem waits until the device has at least minBytes (the capacity change after QMP
// block_resize reaches the guest asynchronously), then grows its ext4 online.
func growFilesystem(device string, minBytes uint64) error {
	sizeFile := filepath.Join("/sys/class/block", filepath.Base(device), "size")
	deadline := time.Now().Add(resizeWaitMax)
	for {
		b, err := os.ReadFile(sizeFile)
		if err != nil {
			return fmt.Errorf("no such block device: %s", device)
		}
		sectors, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if sectors*512 >= minBytes {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is %d bytes, expected at least %d", device, sectors*512, minBytes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, err := exec.Command("/sbin/resize2fs", device).CombinedOutput()
	if err != nil {
		return fmt.Errorf("resize2fs %s failed: %v: %s", device, err, strings.TrimSpace(string(out)))
	}
	return nil
}

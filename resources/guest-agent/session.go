// One exec or pty session: a process in its own process group, its output pumped to the host
// within the host's window, its input queued within the window the agent granted, and one EXIT
// frame at the end. The host closing the session kills the group, so a command never outlives
// the client that started it; so does a new epoch.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// idleAfterExit: once the process has exited, output still arriving (from children that
	// kept the pipe) is forwarded, but a pipe silent for this long counts as ended, so a
	// background child holding stdout does not keep the session open forever.
	idleAfterExit = 150 * time.Millisecond
	// hangupGrace: a closed pty session gets SIGHUP first (shells and editors save state), then
	// SIGKILL.
	hangupGrace = 500 * time.Millisecond
)

type outStream struct {
	num    byte
	r      *os.File
	credit *credit
}

type session struct {
	a     *agent
	id    uint32
	epoch uint64
	req   *openRequest

	cmd         *exec.Cmd
	pgid        int
	master      *os.File // pty sessions
	outs        []*outStream
	stdinCredit *credit
	stdin       *inputQueue
	stdinW      *os.File

	done      chan struct{} // closed when the session is over for the host (abandoned or finished)
	doneOnce  sync.Once
	exited    atomic.Bool
	closing   atomic.Bool // the host sent CLOSE: output is no longer forwarded
	timedOut  atomic.Bool
	abandoned atomic.Bool
	timer     *time.Timer
}

func newSession(a *agent, id uint32, epoch uint64, req *openRequest) *session {
	s := &session{a: a, id: id, epoch: epoch, req: req, done: make(chan struct{}), stdinCredit: newCredit(stdinWindow), stdin: newInputQueue()}
	// the streams (and their windows) exist before the process does: the host may grant more
	// window as soon as it sees OPENED
	s.outs = []*outStream{{num: streamStdout, credit: newCredit(req.Window)}}
	if !req.pty {
		s.outs = append(s.outs, &outStream{num: streamStderr, credit: newCredit(req.Window)})
	}
	return s
}

func (s *session) outStream(num byte) *outStream {
	for _, o := range s.outs {
		if o.num == num {
			return o
		}
	}
	return nil
}

func (s *session) send(typ byte, payload []byte) bool {
	return s.a.send(s.epoch, encodeFrame(typ, s.id, payload), s.done)
}

func (s *session) finish() {
	s.doneOnce.Do(func() { close(s.done) })
}

// start launches the process (synchronously, so the reader can route the next frames to it) and
// then runs the session in its own goroutine. A process that cannot start still makes a session:
// the reason goes to stderr and the exit code is 127 (not found) or 126, as a shell would do.
func (s *session) start() {
	acc := rootAccount("/etc/passwd")
	env := sessionEnv(acc, s.req, "/etc")
	argv := s.req.Argv
	argv0 := ""
	if len(argv) == 0 { // pty without argv: root's login shell
		argv = []string{acc.shell}
		argv0 = "-" + filepath.Base(acc.shell)
	}
	cwd := s.req.Cwd
	if cwd == "" {
		cwd = acc.home
	}
	if err := s.spawn(argv, argv0, env, cwd); err != nil {
		code := 126
		var ce *cwdError
		if errors.Is(err, syscall.ENOENT) && !errors.As(err, &ce) {
			code = 127
		}
		go s.failStart(code, fmt.Sprintf("spritely-agent: cannot run %s: %v\n", argv[0], err))
		return
	}
	if s.req.TimeoutMs > 0 {
		s.timer = time.AfterFunc(time.Duration(s.req.TimeoutMs)*time.Millisecond, func() {
			if !s.exited.Load() {
				s.timedOut.Store(true)
				s.kill(syscall.SIGKILL)
			}
		})
	}
	go s.run()
}

func (s *session) run() {
	opened, _ := json.Marshal(map[string]int{"pid": s.cmd.Process.Pid, "stdinWindow": stdinWindow})
	if !s.send(tOpened, opened) {
		s.kill(syscall.SIGKILL)
	}
	var pumps sync.WaitGroup
	for _, o := range s.outs {
		pumps.Add(1)
		go func(o *outStream) {
			defer pumps.Done()
			s.pump(o)
		}(o)
	}
	go s.feedStdin()
	state, _ := s.cmd.Process.Wait()
	s.exited.Store(true)
	if s.timer != nil {
		s.timer.Stop()
	}
	for _, o := range s.outs {
		o.r.SetReadDeadline(time.Now().Add(idleAfterExit))
	}
	pumps.Wait()
	s.stdin.close()
	if s.master != nil {
		s.master.Close()
	}
	if s.stdinW != nil {
		s.stdinW.Close()
	}
	if !s.abandoned.Load() {
		s.send(tExit, exitJSON(state, s.timedOut.Load()))
	}
	s.a.forget(s)
	s.finish()
}

// cwdError: the working directory is not usable (exit 126, even when it does not exist).
type cwdError struct {
	dir string
	err error
}

func (e *cwdError) Error() string { return fmt.Sprintf("working directory %s: %v", e.dir, e.err) }
func (e *cwdError) Unwrap() error { return e.err }

func (s *session) spawn(argv []string, argv0 string, env []string, cwd string) error {
	if st, err := os.Stat(cwd); err != nil || !st.IsDir() {
		if err == nil {
			err = syscall.ENOTDIR
		}
		return &cwdError{cwd, err}
	}
	path, err := lookPath(argv[0], env)
	if err != nil {
		return err
	}
	args := append([]string(nil), argv...)
	if argv0 != "" {
		args[0] = argv0
	}
	cmd := &exec.Cmd{Path: path, Args: args, Env: env, Dir: cwd}
	var childEnds []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			f.Close()
		}
	}
	if s.req.pty {
		master, slave, err := openPTY()
		if err != nil {
			return err
		}
		setWinsize(master, uint16(s.req.Cols), uint16(s.req.Rows))
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		childEnds = []*os.File{slave}
		s.master = master
		s.outs[0].r = master
		if err := cmd.Start(); err != nil {
			closeAll(childEnds)
			master.Close()
			return err
		}
	} else {
		var parentEnds []*os.File
		pipe := func() (r, w *os.File) {
			if err != nil {
				return nil, nil
			}
			r, w, err = os.Pipe()
			if err == nil {
				growPipe(w)
			}
			return r, w
		}
		inR, inW := pipe()
		outR, outW := pipe()
		errR, errW := pipe()
		if err != nil {
			closeAll([]*os.File{inR, inW, outR, outW, errR, errW})
			return err
		}
		childEnds = []*os.File{inR, outW, errW}
		parentEnds = []*os.File{inW, outR, errR}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		s.stdinW = inW
		s.outs[0].r, s.outs[1].r = outR, errR
		if err := cmd.Start(); err != nil {
			closeAll(childEnds)
			closeAll(parentEnds)
			return err
		}
	}
	closeAll(childEnds)
	s.cmd = cmd
	s.pgid = cmd.Process.Pid
	return nil
}

func (s *session) failStart(code int, msg string) {
	opened, _ := json.Marshal(map[string]any{"pid": nil, "stdinWindow": 0})
	s.send(tOpened, opened)
	if n := len(msg); n > 0 && n <= s.req.Window && !s.req.pty {
		s.send(tData, append([]byte{streamStderr}, msg...))
	} else if n > 0 && n <= s.req.Window {
		s.send(tData, append([]byte{streamStdout}, msg...))
	}
	b, _ := json.Marshal(map[string]any{"code": code, "signal": nil, "timedOut": false})
	s.send(tExit, b)
	s.a.forget(s)
	s.finish()
}

// pump forwards one output stream within the host's window, reading straight into the wire
// buffer of a DATA frame (writer.go).
func (s *session) pump(o *outStream) {
	for {
		n, ok := o.credit.take(readChunk, s.done)
		if !ok {
			break
		}
		if s.exited.Load() {
			o.r.SetReadDeadline(time.Now().Add(idleAfterExit))
		}
		buf := newDataFrame()
		k, err := o.r.Read(buf[dataHeader : dataHeader+n])
		o.credit.giveBack(n - k)
		if k > 0 && !s.closing.Load() {
			if !s.a.send(s.epoch, sealDataFrame(buf, s.id, o.num, k), s.done) {
				break
			}
		} else {
			recycleFrame(buf)
		}
		if err != nil {
			break // EOF, EIO (pty slave closed), idle after exit, or the session was closed
		}
	}
	if s.master == nil {
		o.r.Close()
	}
}

func (s *session) kill(sig syscall.Signal) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	syscall.Kill(-s.pgid, sig)
}

func (s *session) signal(sig syscall.Signal) {
	if !s.exited.Load() {
		s.kill(sig)
	}
}

func (s *session) resize(cols, rows uint16) {
	if s.master != nil && !s.exited.Load() {
		setWinsize(s.master, uint16(clampSize(int(cols), 80, 1000)), uint16(clampSize(int(rows), 24, 500)))
	}
}

// hostClosed: the client is gone; kill the group (pty: hang up first) and stop forwarding.
func (s *session) hostClosed() {
	if !s.closing.CompareAndSwap(false, true) {
		return
	}
	s.stopReading()
	if s.req.pty {
		s.kill(syscall.SIGHUP)
		time.AfterFunc(hangupGrace, func() { s.kill(syscall.SIGKILL) })
	} else {
		s.kill(syscall.SIGKILL)
	}
}

// abandon: the epoch ended; kill everything and send nothing more.
func (s *session) abandon() {
	s.abandoned.Store(true)
	s.closing.Store(true)
	s.kill(syscall.SIGKILL)
	s.stopReading()
	s.finish()
}

func (s *session) stopReading() {
	for _, o := range s.outs {
		if o.r != nil {
			o.r.SetReadDeadline(time.Now())
		}
	}
}

func exitJSON(state *os.ProcessState, timedOut bool) []byte {
	var code, sig any
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig = signalName(ws.Signal())
	} else {
		code = state.ExitCode()
	}
	b, _ := json.Marshal(map[string]any{"code": code, "signal": sig, "timedOut": timedOut})
	return b
}

// growPipe raises a pipe's buffer to 1 MiB (root may): under emulation every pipe wake-up is
// expensive, and a bigger buffer lets the process run ahead and the agent read big chunks.
func growPipe(f *os.File) {
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			syscall.Syscall(syscall.SYS_FCNTL, fd, 1031 /* F_SETPIPE_SZ */, 1<<20)
		})
	}
}

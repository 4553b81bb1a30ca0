package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSessionEnv(t *testing.T) {
	etc := t.TempDir()
	os.MkdirAll(filepath.Join(etc, "default"), 0o755)
	os.WriteFile(filepath.Join(etc, "environment"), []byte("# c\nhttp_proxy=http://p:1\nQUOTED=\"a b\"\nbad name=x\nPATH=/from/file\n"), 0o644)
	os.WriteFile(filepath.Join(etc, "default/locale"), []byte("LANG=C.UTF-8\n"), 0o644)
	acc := account{home: "/root", shell: "/bin/bash"}
	env := sessionEnv(acc, &openRequest{Env: map[string]string{"PATH": "/mine", "X": "1"}}, etc)
	want := []string{"HOME=/root", "LANG=C.UTF-8", "LOGNAME=root", "PATH=/mine", "QUOTED=a b", "SHELL=/bin/bash", "USER=root", "X=1", "http_proxy=http://p:1"}
	if strings.Join(env, "|") != strings.Join(want, "|") {
		t.Fatalf("got %v", env)
	}
	pty := sessionEnv(acc, &openRequest{pty: true, Term: "vt100"}, etc)
	if envValue(pty, "TERM") != "vt100" || envValue(pty, "PATH") != "/from/file" {
		t.Fatalf("got %v", pty)
	}
}

func TestRootAccountAndLookPath(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	os.WriteFile(pw, []byte("daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\nroot:x:0:0:root:/rooty:/bin/zsh\n"), 0o644)
	if a := rootAccount(pw); a.home != "/rooty" || a.shell != "/bin/zsh" {
		t.Fatalf("got %+v", a)
	}
	if a := rootAccount(filepath.Join(dir, "missing")); a.home != "/root" || a.shell != "/bin/sh" {
		t.Fatalf("got %+v", a)
	}
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "tool"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(bin, "data"), []byte(""), 0o644)
	env := []string{"PATH=/nowhere:" + bin}
	if p, err := lookPath("tool", env); err != nil || p != filepath.Join(bin, "tool") {
		t.Fatalf("got %q %v", p, err)
	}
	if _, err := lookPath("data", env); err == nil {
		t.Fatal("a non-executable file must not be found")
	}
	if p, _ := lookPath("./x/y", env); p != "./x/y" {
		t.Fatalf("a path with a slash is used as it is, got %q", p)
	}
}

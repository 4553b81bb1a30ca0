package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"

func fileMode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestIdentityWritesEverythingUnderRoot(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/ssh"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("127.0.0.1\tlocalhost\n127.0.1.1\tgolden\n::1 localhost"), 0o644)
	for _, k := range []string{"ssh_host_rsa_key", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"} {
		os.WriteFile(filepath.Join(root, "etc/ssh", k), []byte("old"), 0o600)
	}
	req, _ := json.Marshal(map[string]any{
		"hostname": "dev-1", "machineId": strings.Repeat("ab", 16),
		"hostKey": testKey, "hostKeyPub": "ssh-ed25519 AAAA root@dev-1\n",
		"authorizedKeys": "ssh-ed25519 BBBB daemon", "seed": base64.StdEncoding.EncodeToString(make([]byte, 64)),
		"timeNs": "1767225600000000000", "resize": map[string]any{"device": "/dev/vda", "minBytes": 1},
	})
	res := applyIdentityJSON(req, root)
	if !res.OK {
		t.Fatalf("refused: %s", res.Error)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if read("etc/hostname") != "dev-1\n" || read("etc/hosts") != "127.0.0.1\tlocalhost\n::1 localhost\n127.0.1.1\tdev-1\n" {
		t.Fatalf("hostname %q hosts %q", read("etc/hostname"), read("etc/hosts"))
	}
	if read("etc/machine-id") != strings.Repeat("ab", 16)+"\n" || fileMode(t, filepath.Join(root, "etc/machine-id")) != 0o444 {
		t.Fatal("machine-id")
	}
	if _, err := os.Stat(filepath.Join(root, "etc/ssh/ssh_host_rsa_key")); !os.IsNotExist(err) {
		t.Fatal("old host keys must go")
	}
	if read("etc/ssh/ssh_host_ed25519_key") != testKey || fileMode(t, filepath.Join(root, "etc/ssh/ssh_host_ed25519_key")) != 0o600 {
		t.Fatal("host key")
	}
	if read("etc/ssh/ssh_host_ed25519_key.pub") != "ssh-ed25519 AAAA root@dev-1\n" || fileMode(t, filepath.Join(root, "etc/ssh/ssh_host_ed25519_key.pub")) != 0o644 {
		t.Fatal("host key pub")
	}
	if read("root/.ssh/authorized_keys") != "ssh-ed25519 BBBB daemon\n" || fileMode(t, filepath.Join(root, "root/.ssh")) != 0o700 || fileMode(t, filepath.Join(root, "root/.ssh/authorized_keys")) != 0o600 {
		t.Fatal("authorized_keys")
	}
	// a shorter content replaces a longer one completely
	res = applyIdentityJSON([]byte(`{"hostname":"x"}`), root)
	if !res.OK || read("etc/hostname") != "x\n" {
		t.Fatalf("rewrite: %v %q", res.Error, read("etc/hostname"))
	}
}

func TestIdentityValidatesBeforeChangingAnything(t *testing.T) {
	cases := map[string]map[string]any{
		"hostname":    {"hostname": "Bad_Name"},
		"dash":        {"hostname": "-x"},
		"long":        {"hostname": strings.Repeat("a", 64)},
		"machineId":   {"machineId": "xyz"},
		"together":    {"hostKey": testKey},
		"hostKey":     {"hostKey": "nope", "hostKeyPub": "ssh-ed25519 A"},
		"hostKeyPub":  {"hostKey": testKey, "hostKeyPub": "ssh-rsa A"},
		"two pubs":    {"hostKey": testKey, "hostKeyPub": "ssh-ed25519 A\nssh-ed25519 B"},
		"seed":        {"seed": "!!"},
		"seed size":   {"seed": base64.StdEncoding.EncodeToString(make([]byte, 5000))},
		"time":        {"timeNs": "12"},
		"time digits": {"timeNs": "+1767225600000000000"},
		"device":      {"resize": map[string]any{"device": "/etc/passwd", "minBytes": 0}},
		"unknown":     {"nope": 1},
	}
	for name, req := range cases {
		root := t.TempDir()
		full := map[string]any{"hostname": "fine"}
		for k, v := range req {
			full[k] = v
		}
		b, _ := json.Marshal(full)
		res := applyIdentityJSON(b, root)
		if res.OK || res.Error == "" {
			t.Fatalf("%s: accepted", name)
		}
		if entries, _ := os.ReadDir(root); len(entries) != 0 {
			t.Fatalf("%s: changed files before validating everything", name)
		}
	}
}

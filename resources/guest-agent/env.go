// The environment a session starts with, close to what an SSH login gives (pam_env reads
// /etc/environment and /etc/default/locale): root's HOME, USER, LOGNAME and SHELL, a standard
// PATH, those two files, then what the request sets. PATH lookups use the session's PATH, not
// the agent's.
package main

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

type account struct {
	home, shell string
}

// rootAccount reads root's home and shell from passwd (defaults /root, /bin/sh).
func rootAccount(passwd string) account {
	acc := account{home: "/root", shell: "/bin/sh"}
	f, err := os.Open(passwd)
	if err != nil {
		return acc
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) == 7 && fields[2] == "0" {
			if fields[5] != "" {
				acc.home = fields[5]
			}
			if fields[6] != "" {
				acc.shell = fields[6]
			}
			break
		}
	}
	return acc
}

// readEnvFile parses KEY=VALUE lines (optional quotes, # comments) as pam_env does for these files.
func readEnvFile(path string, into map[string]string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || !envName.MatchString(k) {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		into[k] = v
	}
}

// sessionEnv builds the environment: base, files, then the request's variables.
func sessionEnv(acc account, req *openRequest, etc string) []string {
	env := map[string]string{
		"PATH":    defaultPath,
		"HOME":    acc.home,
		"USER":    "root",
		"LOGNAME": "root",
		"SHELL":   acc.shell,
	}
	readEnvFile(filepath.Join(etc, "environment"), env)
	readEnvFile(filepath.Join(etc, "default/locale"), env)
	if req.pty {
		env["TERM"] = req.Term
	}
	for k, v := range req.Env {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return kv[len(key)+1:]
		}
	}
	return ""
}

// lookPath finds name along the PATH in env (names with a slash are used as they are).
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(envValue(env, "PATH")) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", syscall.ENOENT
}

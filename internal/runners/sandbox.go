package runners

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// How builds run (Config.Isolation).
const (
	// IsolationSandbox runs each build in a bubblewrap sandbox that sees its own work directory,
	// the host's tools read-only and its own processes only.
	IsolationSandbox = "sandbox"
	// IsolationNone runs builds as plain processes of the server's user, which see all it sees.
	IsolationNone = "none"
)

// sandbox starts the processes of builds: inside bubblewrap (bwrap), or, with bwrap empty, as
// plain processes.
type sandbox struct {
	bwrap string
	// args are bwrap's arguments for every build: what it sees of the host.
	args []string
}

// newSandbox prepares builds' isolation, and checks that bwrap can make a sandbox here by running
// a trivial command in one, with dir as its work directory.
func newSandbox(ctx context.Context, isolation, dir string) (*sandbox, error) {
	switch isolation {
	case IsolationNone:
		return &sandbox{}, nil
	case IsolationSandbox:
	default:
		return nil, fmt.Errorf("--build-isolation %s: want %s or %s", isolation, IsolationSandbox, IsolationNone)
	}
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("builds run in a bubblewrap sandbox, which needs Linux: on %s, run builds without isolation with --build-isolation none", runtime.GOOS)
	}
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		return nil, errors.New("builds run in a sandbox made by bubblewrap, and bwrap is not installed: install the bubblewrap package (apt-get install bubblewrap), or run builds without isolation with --build-isolation none")
	}
	s := &sandbox{bwrap: bwrap, args: hostView()}
	var out bytes.Buffer
	cmd := s.command(ctx, dir, dir, []string{}, "/bin/sh", "-c", "exit 0")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := runLocked(cmd); err != nil {
		return nil, fmt.Errorf("builds run in a sandbox made by bubblewrap, and %s cannot make one here (%v: %s): allow unprivileged user namespaces (or install bwrap setuid), or run builds without isolation with --build-isolation none",
			bwrap, err, strings.TrimSpace(out.String()))
	}
	return s, nil
}

// hostEtc are the entries of /etc that builds see (patterns): what tools need to find users,
// host names, certificates, libraries, time zones and the alternatives of commands. The rest of
// /etc is where a host keeps its secrets (shadow passwords, private keys, the configuration and
// credentials of its services and package registries), and builds do not see it.
var hostEtc = []string{
	"alternatives", "passwd", "group", "nsswitch.conf", "hosts", "host.conf", "hostname", "resolv.conf",
	"gai.conf", "services", "protocols", "networks",
	"ssl/certs", "ssl/openssl.cnf", "ca-certificates", "ca-certificates.conf",
	"pki/tls/certs", "pki/tls/openssl.cnf", "pki/ca-trust", "pki/java", "crypto-policies",
	"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone",
	"os-release", "lsb-release", "debian_version", "mime.types", "magic", "magic.mime",
	"bash.bashrc", "profile", "profile.d", "inputrc", "shells", "terminfo", "locale.alias",
	"gitconfig", "ssh/ssh_config", "ssh/ssh_config.d", "ssh/ssh_known_hosts",
	"java-*", "perl", "python3*", "fonts", "xml", "sgml",
}

// hostView returns bwrap's arguments for what a build sees of the host: its tools, read-only
// (/usr, /bin, /lib…, hostEtc); a private /proc of its own processes, /dev and /tmp; the host's
// network. It runs without capabilities, in a session of its own (no terminal to write to), and
// dies with its parent.
func hostView() []string {
	args := []string{
		"--unshare-all", "--share-net", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
		"--ro-bind", "/usr", "/usr",
	}
	for _, dir := range []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		info, err := os.Lstat(dir)
		switch {
		case err != nil:
		case info.Mode()&os.ModeSymlink != 0:
			if target, err := os.Readlink(dir); err == nil {
				args = append(args, "--symlink", target, dir)
			}
		case info.IsDir():
			args = append(args, "--ro-bind", dir, dir)
		}
	}
	args = append(args, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp")
	for _, pattern := range hostEtc {
		matches, _ := filepath.Glob(filepath.Join("/etc", pattern))
		for _, p := range matches {
			// -try: a link that leads nowhere (resolv.conf when its resolver is down) is skipped.
			args = append(args, "--ro-bind-try", p, p)
		}
	}
	return append(args, "--symlink", "../proc/self/mounts", "/etc/mtab")
}

// command returns the command that runs argv, with env as its whole environment, in dir inside
// the build's work directory work: the only directory of the host it may write to. When ctx ends
// its process group is killed: with bwrap, that ends every process of the build. Run it with
// runLocked.
func (s *sandbox) command(ctx context.Context, work, dir string, env []string, argv ...string) *exec.Cmd {
	name, args := argv[0], argv[1:]
	if s.bwrap != "" {
		// The rest of the sandbox's root, made of the directories that hold its mounts, is read-only.
		name, args = s.bwrap, slices.Concat(s.args, []string{"--bind", work, work, "--remount-ro", "/", "--chdir", dir, "--"}, argv)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dieWithServer(cmd.SysProcAttr)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// runLocked runs cmd from a goroutine locked to its thread. The signal that kills a process when
// the server dies (dieWithServer) comes when the thread that started it ends, not the server;
// and Go ends a thread only when a goroutine locked to it returns. Locked until the command ends,
// the thread lives as long as the server does, or longer than the command.
func runLocked(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Run()
}

// environment returns the variables a build starts with, before its own: in a sandbox, the
// server's PATH, USER, locale and time zone, with a home and a temporary directory of the build's
// own; without, those and the rest of inheritedEnv, as they are in the server.
func (s *sandbox) environment(work string) (map[string]string, error) {
	names := inheritedEnv
	if s.bwrap != "" {
		names = []string{"PATH", "USER", "LANG", "LC_ALL", "TZ"}
	}
	env := map[string]string{}
	for _, name := range names {
		if v, ok := os.LookupEnv(name); ok {
			env[name] = v
		}
	}
	if s.bwrap == "" {
		return env, nil
	}
	env["HOME"], env["TMPDIR"] = filepath.Join(work, "home"), filepath.Join(work, "tmp")
	// Go makes its module cache read-only; the run's own, in its home, must be removable.
	env["GOFLAGS"] = "-modcacherw"
	for _, dir := range []string{env["HOME"], env["TMPDIR"]} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
	}
	return env, nil
}

// inheritedEnv are the server's environment variables a build run without a sandbox sees;
// credentials and the rest of the server's environment stay out, as a CodeBuild container starts
// clean. In a sandbox, the Go caches and settings stay out too: a cache shared by builds lets one
// build plant compiled code that another links, so each build has its own, in its home.
var inheritedEnv = []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ", "SSL_CERT_FILE", "GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOPROXY"}

//go:build !linux

package runners

import "syscall"

// dieWithServer does nothing: only Linux kills a process when its parent dies, and only Linux
// has bubblewrap sandboxes; elsewhere builds run with --build-isolation none, and a build's
// processes may outlive a server that is killed.
func dieWithServer(*syscall.SysProcAttr) {}

package runners

import "syscall"

// dieWithServer has the kernel kill the process when the server dies, however it dies (a kill
// -9 included): a build never outlives the server that started it. Without a sandbox that is the
// shell only; in one, bwrap, and with it every process of the build.
func dieWithServer(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }

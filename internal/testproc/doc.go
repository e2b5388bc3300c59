// Package testproc runs the child processes of baton's process-level tests
// (cmd/baton and e2e): it builds the binaries once, starts each process in
// its own process group with its output kept, and kills the group at the
// end of the test that started it, printing the output if the test failed.
//
// Guarantees: a process started with Start is dead and reaped when its test
// ends, also when the test fails or the process was stopped (SIGSTOP); on
// Linux it also dies with the test binary (Pdeathsig), so a test binary
// killed at its timeout leaves nothing behind.
//
// Not guaranteed: grandchildren that leave the process group (setsid)
// survive, and so do the group's other members when its leader exited by
// itself (the group is killed only while the leader runs); FreePort's port is only free when it returns, so a process
// started on it can find it taken (the tests that use it expect that
// rarely, and say so in their failure output).
//
// WaitSlowRequests knows the demo app (demo/app): it waits until the app
// holds a number of slow requests, so a drain test knows they are in
// flight before it demotes the node.
//
// It is test support: only _test.go files import it.
package testproc

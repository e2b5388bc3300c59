// Command baton is an active/standby front door for VMs: it proxies HTTP to
// the local application only while it holds a shared lease, answers the load
// balancer's probe with 200 only there, and drains on demotion.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

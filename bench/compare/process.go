package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// process is a server the comparison started, in its own process group so that
// stop ends its children too (rabbitmq-server is a script around the Erlang VM).
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process exited
	err  error         // its exit status, once done is closed
}

// startProcess runs name with args, its output in dir/<name>.log.
func startProcess(name, dir string, env []string, args ...string) (*process, error) {
	logFile, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", name, err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM to the process group, then SIGKILL if it has not exited in 20s.
func (p *process) stop() {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM) // it may have exited already
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Children that outlived the leader (the Erlang VM after its script) go too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// waitReady polls ready until it returns nil, the process exits, or timeout.
func (p *process) waitReady(ctx context.Context, timeout time.Duration,
	ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v): %w", p.name, p.err, err)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %w", p.name, timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// dialReady is a readiness check that succeeds once addr accepts connections.
func dialReady(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("find a free port: listener has no TCP address")
	}
	return addr.Port, nil
}

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// devProc is one node process of a dev cluster.
type devProc struct {
	k          int
	self       string // the ganglion binary
	cfgPath    string
	url        string
	fedURL     string
	serverName string
	cmd        *exec.Cmd
	done       chan struct{} // closed when the process exits
	err        error         // its exit status, once done
}

func (p *devProc) logPath() string {
	return filepath.Join(filepath.Dir(p.cfgPath), "ganglion.log")
}

// start runs `ganglion serve` for the node, appending to its log, and sends
// p on exited when the process ends.
func (p *devProc) start(exited chan<- *devProc) error {
	logFile, err := os.OpenFile(p.logPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.self, "serve", "--config", p.cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	p.cmd, p.done = cmd, make(chan struct{})
	done := p.done
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(done)
		exited <- p
	}()
	return nil
}

// announce prints the node line scripts parse.
func (p *devProc) announce() {
	fmt.Printf("node %d pid %d client %s config %s federation %s server_name %s\n",
		p.k, p.cmd.Process.Pid, p.url, p.cfgPath, p.fedURL, p.serverName)
}

// stopAll asks every running child to stop (SIGTERM) and waits a bounded
// time before killing it.
func stopAll(procs []*devProc) {
	for _, p := range procs {
		if p != nil && p.cmd != nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range procs {
		if p == nil || p.cmd == nil {
			continue
		}
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Node-to-node traffic shares the Raft port (as Nomad's RPC port does): the
// first byte of a connection says whether it carries Raft RPCs or forwarded
// client requests. One port means one firewall rule, and a network cut
// between two nodes cuts both kinds of traffic alike.
const (
	tagRaft    byte = 'R'
	tagForward byte = 'F'
)

// tagTimeout bounds how long an accepted connection may take to send its tag.
const tagTimeout = 5 * time.Second

// mux accepts on the Raft listen address and hands each connection to the
// sub-listener its tag names. Outgoing dials leave from the listen IP, so a
// peer (or a test proxy) sees which node a connection comes from.
type mux struct {
	ln        net.Listener
	advertise net.Addr
	source    *net.TCPAddr
	log       hclog.Logger
	raft      *subListener
	forward   *subListener
	closeOnce sync.Once
	done      chan struct{}
}

func newMux(listen string, advertise net.Addr, log hclog.Logger) (*mux, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("raft listen: %w", err)
	}
	m := &mux{ln: ln, advertise: advertise, log: log, done: make(chan struct{})}
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsUnspecified() {
		m.source = &net.TCPAddr{IP: ip}
	}
	m.raft = &subListener{m: m, addr: advertise, conns: make(chan net.Conn, 16)}
	m.forward = &subListener{m: m, addr: ln.Addr(), conns: make(chan net.Conn, 16)}
	go m.acceptLoop()
	return m, nil
}

func (m *mux) acceptLoop() {
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.log.Error("accept failed; node-to-node traffic stops", "error", err)
			return
		}
		go m.route(conn)
	}
}

// route reads the tag off a new connection and queues it for its listener.
func (m *mux) route(conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(tagTimeout))
	var tag [1]byte
	if _, err := conn.Read(tag[:]); err != nil {
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	var sub *subListener
	switch tag[0] {
	case tagRaft:
		sub = m.raft
	case tagForward:
		sub = m.forward
	default:
		m.log.Warn("dropping connection with unknown tag", "remote", conn.RemoteAddr().String(), "tag", tag[0])
		conn.Close()
		return
	}
	select {
	case sub.conns <- conn:
	case <-m.done:
		conn.Close()
	}
}

// dial connects to a peer's Raft address and sends the tag.
func (m *mux) dial(ctx context.Context, addr string, tag byte) (net.Conn, error) {
	d := net.Dialer{}
	if m.source != nil {
		d.LocalAddr = m.source
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
	}
	if _, err := conn.Write([]byte{tag}); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

func (m *mux) close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.done)
		err = m.ln.Close()
	})
	return err
}

// subListener is the net.Listener one kind of traffic sees. The Raft one is
// also the raft.StreamLayer.
type subListener struct {
	m     *mux
	addr  net.Addr
	conns chan net.Conn
}

func (s *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.m.done:
		return nil, net.ErrClosed
	}
}

// Close closes the shared listener: both kinds stop together.
func (s *subListener) Close() error { return s.m.close() }

func (s *subListener) Addr() net.Addr { return s.addr }

// Dial implements raft.StreamLayer.
func (s *subListener) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.m.dial(ctx, string(address), tagRaft)
}

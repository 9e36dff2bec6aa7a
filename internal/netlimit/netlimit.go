// Package netlimit bounds the connections a listener holds open at once.
//
// A server without such a bound lets any client open connections until
// file descriptors or memory run out (each TLS connection holds buffers,
// each HTTP/1 connection a goroutine). Listener blocks Accept while the
// limit is reached, so excess connections wait in the kernel's backlog and
// are refused by it when that fills — the same policy as
// golang.org/x/net/netutil.LimitListener, without the dependency, plus
// counters for metrics.
package netlimit

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// Stats are the listener's counters.
type Stats struct {
	Active   int64  // connections open now
	Accepted uint64 // connections accepted so far
	Waited   uint64 // accepts that found the limit reached and waited for a connection to close
}

// Listener is a net.Listener that holds at most Max connections open.
type Listener struct {
	net.Listener
	sem      chan struct{}
	done     chan struct{}
	once     sync.Once
	active   atomic.Int64
	accepted atomic.Uint64
	waited   atomic.Uint64
}

// Limit wraps l so that at most max connections are open at once; a
// connection counts until its Close. max must be positive.
func Limit(l net.Listener, max int) (*Listener, error) {
	if max <= 0 {
		return nil, errors.New("netlimit: the connection limit must be positive")
	}
	return &Listener{Listener: l, sem: make(chan struct{}, max), done: make(chan struct{})}, nil
}

// Accept waits for a free place, then for a connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	default:
		l.waited.Add(1)
		select {
		case l.sem <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	l.accepted.Add(1)
	l.active.Add(1)
	return &conn{Conn: c, l: l}, nil
}

// Close closes the listener and wakes an Accept waiting for a place.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Stats returns the counters.
func (l *Listener) Stats() Stats {
	return Stats{Active: l.active.Load(), Accepted: l.accepted.Load(), Waited: l.waited.Load()}
}

type conn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.active.Add(-1)
		<-c.l.sem
	})
	return err
}

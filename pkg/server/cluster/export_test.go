package cluster

import "sync"

// Kill stops the node's share of the cluster the way SIGKILL would: the
// heartbeat stops and the connections to Redis close, with no NodeLeave.
func (c *Cluster) Kill() {
	c.stopLoop()
	c.Bus.Close()
	c.Store.Close()
}

// HoldBeats stops c's heartbeats: it returns once c's loop waits before its
// next one, and release lets it go on. Meanwhile c sends none, as a
// stopped process would.
func HoldBeats(c *Cluster) (release func()) {
	held, gone := make(chan struct{}, 1), make(chan struct{})
	f := func(node string) {
		if node == c.node {
			select {
			case held <- struct{}{}:
			default:
			}
			<-gone
		}
	}
	beforeBeat.Store(&f)
	<-held
	var once sync.Once
	return func() {
		once.Do(func() {
			beforeBeat.Store(nil)
			close(gone)
		})
	}
}

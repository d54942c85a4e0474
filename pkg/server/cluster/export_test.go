package cluster

// Kill stops the node's share of the cluster the way SIGKILL would: the
// heartbeat stops and the connections to Redis close, with no NodeLeave.
func (c *Cluster) Kill() {
	c.stopLoop()
	c.Bus.Close()
	c.Store.Close()
}

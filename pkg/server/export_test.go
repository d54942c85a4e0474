package server

// Internals the external tests look at.

// LockoutUsers is how many users s's failed-login lockout tracks.
func LockoutUsers(s *Server) int {
	s.locks.mu.Lock()
	defer s.locks.mu.Unlock()
	return len(s.locks.m)
}

// MaxHeaderBytes is the cap of every request head.
const MaxHeaderBytes = maxHeaderBytes

// FailedLoginCost is what a refused wslogin costs in pacing tokens.
const FailedLoginCost = failedLoginCost

// Push queues msg to every open socket, as a kick's push is queued.
func Push(s *Server, msg []byte) {
	s.mu.Lock()
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.enqueue(msg)
	}
}

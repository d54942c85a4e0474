package server

// PendingKickPushes is how many kick pushes of s wait to be pushed again
// (not acknowledged yet, socket open).
func PendingKickPushes(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.kp.byConn {
		n += len(l)
	}
	return n
}

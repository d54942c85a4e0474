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

package server

import "net/http"

// restHandler is the REST API mounted on /v4/ (nil until pkg/server/rest
// provides its handler).
func (s *Server) restHandler() http.Handler { return nil }

package server

import (
	"net/http"

	"chatctl/pkg/server/rest"
)

// restHandler is the REST API mounted on /v4/; the Server is its Backend.
func (s *Server) restHandler() http.Handler { return rest.Handler(s, s.log) }

var _ rest.Backend = (*Server)(nil)

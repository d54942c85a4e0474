// Package rest serves the subset of Tencent Cloud Chat's server REST API
// about accounts and login state (docs/REST.md), with the same URLs and JSON:
// the types of pkg/rest, which `chatctl admin` sends.
package rest

import (
	"context"
	"time"

	"chatctl/pkg/rest"
	"chatctl/pkg/server/store"
)

// Instance is one online instance of a user, as query_online_status shows
// it in Detail: Platform iPhone, Android, Web, PC, iPad or Mac; Status
// Online or PushOnline.
type Instance = rest.PlatformStatus

// Backend is what the REST API needs from the server.
type Backend interface {
	// App returns an app's secret key and administrators.
	App(sdkappid uint64) (key string, admins []string, ok bool)
	// Store is the server's durable state.
	Store() store.Store
	// Kick invalidates user's login state: every online instance gets
	// KICKED_OUT REST_API_Kick, every earlier UserSig and A2Key stops working.
	// It returns how many instances were online.
	Kick(ctx context.Context, app uint64, user string) (int, error)
	// Online lists user's online instances.
	Online(ctx context.Context, app uint64, user string) ([]Instance, error)
	// Now is the server's clock.
	Now() time.Time
}

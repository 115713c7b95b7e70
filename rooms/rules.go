package rooms

import (
	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms/stateres"
)

// The state machine resolves forked room state with our state resolution
// and applies the auth rules through it.
func init() {
	fsm.SetRules(fsm.Rules{Resolve: stateres.ResolvePairs, Authorize: stateres.Authorize})
}

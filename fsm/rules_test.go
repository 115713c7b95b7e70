package fsm

import "github.com/ganglion/ganglion/rooms/stateres"

// The binary registers these through package rooms; fsm's tests cannot
// import rooms (it imports fsm), so they register them here.
func init() {
	SetRules(Rules{Resolve: stateres.ResolvePairs, Authorize: stateres.Authorize})
}

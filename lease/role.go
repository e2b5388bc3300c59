package lease

// Role is a node's place in the election, as published by the Elector.
type Role int32

// The roles of a node (README: Roles). Draining and Stopping are set by the owner of the
// data plane around a demotion or shutdown; the Elector itself moves between
// the others.
const (
	RoleStandby     Role = iota // healthy, another node holds the lease
	RoleCandidate               // healthy, trying to acquire
	RoleActive                  // holds a valid lease
	RoleDraining                // just lost or gave up the lease
	RoleUnhealthy               // backend failing: not a candidate
	RoleMaintenance             // operator hold: not a candidate
	RoleStopping                // shutting down
)

var roleNames = [...]string{"standby", "candidate", "active", "draining", "unhealthy", "maintenance", "stopping"}

func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return "unknown"
	}
	return roleNames[r]
}

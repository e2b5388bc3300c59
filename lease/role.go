package lease

// Role is a node's place in the election, as published by the Elector.
type Role int32

// The roles of a node (README: Roles). Draining, Stopping and Failsafe are
// set by the owner of the node's role (around a demotion, a shutdown, and
// while State.Failsafe holds); the Elector itself moves between the others
// and stays RoleActive during failsafe.
const (
	RoleStandby     Role = iota // healthy, another node holds the lease
	RoleCandidate               // healthy, trying to acquire
	RoleActive                  // holds a valid lease
	RoleDraining                // just lost or gave up the lease
	RoleUnhealthy               // backend failing: not a candidate
	RoleMaintenance             // operator hold: not a candidate
	RoleStopping                // shutting down
	RoleFailsafe                // active on its peers' failsafe promises while the storage does not answer
)

var roleNames = [...]string{"standby", "candidate", "active", "draining", "unhealthy", "maintenance", "stopping", "failsafe"}

func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return "unknown"
	}
	return roleNames[r]
}

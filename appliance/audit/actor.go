package audit

import "regexp"

// actorRE is the form of a name that a request gives for whoever makes it.
var actorRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidActor reports whether name may stand as the actor a request names (the rollout
// API's loopback header, a self-update request's requested_by): 1 to 64 letters,
// digits, '.', '_', '@' or '-', starting with a letter or digit. The names the appliance
// gives its own actions ("system:audit") are not of this form, so a request cannot
// pass itself off as one.
func ValidActor(name string) bool { return actorRE.MatchString(name) }

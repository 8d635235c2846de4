package agent

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// checkWritable reads p's owner and DACL and refuses p when aclWriters finds a SID
// other than SYSTEM, Administrators, TrustedInstaller or the owner that may write it.
func checkWritable(p string) error {
	sd, err := windows.GetNamedSecurityInfo(p, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("reading the ACL of %s: %w", p, err)
	}
	var owner string
	if o, _, err := sd.Owner(); err == nil && o != nil {
		owner = o.String()
	}
	dacl, _, err := sd.DACL()
	nullDACL := dacl == nil
	if err != nil && !errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND) { // not found: no DACL, everyone may
		return fmt.Errorf("reading the ACL of %s: %w", p, err)
	}
	var aces []ACE
	if !nullDACL {
		for i := uint32(0); i < uint32(dacl.AceCount); i++ {
			var a *windows.ACCESS_ALLOWED_ACE
			if err := windows.GetAce(dacl, i, &a); err != nil {
				return fmt.Errorf("reading entry %d of the ACL of %s: %w", i, p, err)
			}
			switch a.Header.AceType {
			case windows.ACCESS_ALLOWED_ACE_TYPE, windows.ACCESS_DENIED_ACE_TYPE:
			default:
				continue // object and callback entries: not used on files
			}
			sid := (*windows.SID)(unsafe.Pointer(&a.SidStart))
			aces = append(aces, ACE{
				Deny:        a.Header.AceType == windows.ACCESS_DENIED_ACE_TYPE,
				SID:         sid.String(),
				Mask:        uint32(a.Mask),
				InheritOnly: a.Header.AceFlags&windows.INHERIT_ONLY_ACE != 0,
			})
		}
	}
	if prob := aclProblem(owner, nullDACL, aces); prob != "" {
		inherit, tree := "", ""
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			inherit, tree = "(OI)(CI)", " /T"
		}
		return fmt.Errorf("%s %s: it decides what the agent runs as SYSTEM; fix as an Administrator with: "+
			"icacls %q /setowner *S-1-5-32-544%s && icacls %q /inheritance:r /grant:r *S-1-5-18:%sF *S-1-5-32-544:%sF%s",
			p, prob, p, tree, p, inherit, inherit, tree)
	}
	return nil
}

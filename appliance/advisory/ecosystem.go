package advisory

import "regexp"

// ecosystems map an agent's OS name (os-release PRETTY_NAME) to its OSV ecosystem.
var ecosystems = []struct {
	re     *regexp.Regexp
	prefix string
}{
	{regexp.MustCompile(`^Debian GNU/Linux (\d+)\b`), "Debian:"},
	{regexp.MustCompile(`^Ubuntu (\d+\.\d+)\b`), "Ubuntu:"},
	{regexp.MustCompile(`^Alpine Linux (v\d+\.\d+)\b`), "Alpine:"},
	{regexp.MustCompile(`^Rocky Linux (\d+)\b`), "Rocky Linux:"},
	{regexp.MustCompile(`^AlmaLinux (\d+)\b`), "AlmaLinux:"},
}

// Ecosystem is the OSV ecosystem of the packages of an agent whose OS is osName
// ("Debian GNU/Linux 12 (bookworm)" → "Debian:12"), or "" when there is none (Windows,
// macOS, an OS not known here): that agent's packages are then not matched.
func Ecosystem(osName string) string {
	for _, e := range ecosystems {
		if m := e.re.FindStringSubmatch(osName); m != nil {
			return e.prefix + m[1]
		}
	}
	return ""
}

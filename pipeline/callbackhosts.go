package pipeline

import (
	"net"
	"regexp"
	"strings"
)

// CallbackHostAllowed reports whether host, a host name or IP address
// without a port (as [net/url.URL.Hostname] gives it), is one of allowed:
// an entry "name" allows that host only, "*.suffix" any host ending in
// ".suffix" (a.suffix, a.b.suffix; not suffix itself). Names compare
// case-insensitively, and a trailing dot (a fully qualified name) is
// ignored on either side. An empty host is never allowed.
func CallbackHostAllowed(host string, allowed []string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" {
		return false
	}
	for _, entry := range allowed {
		entry = strings.ToLower(strings.TrimSuffix(entry, "."))
		if suffix, ok := strings.CutPrefix(entry, "*."); ok {
			if suffix != "" && strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if entry == host {
			return true
		}
	}
	return false
}

// hostName is a DNS name: labels of letters, digits, '-' and '_'
// separated by dots, with an optional trailing dot.
var hostName = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$`)

// validCallbackHost reports whether entry is what callback_hosts lists: a
// host name, "*." and a host name, or an IP address.
func validCallbackHost(entry string) bool {
	if net.ParseIP(entry) != nil {
		return true
	}
	return hostName.MatchString(strings.TrimPrefix(entry, "*."))
}

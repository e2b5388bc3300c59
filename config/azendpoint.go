package config

import (
	"strconv"

	"github.com/batonproxy/baton/internal/azure"
)

// accountURLWithConnectionString: with auth = "connection-string" the
// storage client takes its endpoint from the connection string, and
// lease.azblob.account_url is not used. So that the file does not say one
// thing while baton does another, an account_url naming another blob
// endpoint than the connection string is an error, and one naming the same
// endpoint a warning. The connection string is a secret read from a file
// or the environment; it is compared where Load can read it. `baton run`
// loads the file in the process that then reads the secret to build the
// client, so a node never starts with the two disagreeing; where Load
// cannot read it (check-config run by another user, the variable not set in
// this shell), a warning says that nothing was compared.
func (st *state) accountURLWithConnectionString(c *Config) {
	az := c.Lease.AzBlob
	const p = "lease.azblob."
	if az.Auth != "connection-string" || az.AccountURL == "" ||
		st.failed[p+"account_url"] || st.failed[p+"connection_string_env"] || st.failed[p+"connection_string_file"] {
		return
	}
	want, err := azure.CanonicalEndpoint(az.AccountURL)
	if err != nil {
		return // validateAzBlob reported it
	}
	source := p + "connection_string_file " + strconv.Quote(az.ConnectionStringFile)
	if az.ConnectionStringEnv != "" {
		source = p + "connection_string_env " + az.ConnectionStringEnv
	}
	cs, err := st.readSecret(az.ConnectionStringEnv, az.ConnectionStringFile)
	if err != nil {
		// ReadSecret's errors name the file or variable, never the value.
		c.LoadWarnings = append(c.LoadWarnings, "lease.azblob.account_url was not compared with the endpoint of the connection string ("+
			err.Error()+"); with auth = \"connection-string\" account_url is not used, and baton run refuses a connection string naming another endpoint.")
		return
	}
	got, err := azure.ConnectionStringEndpoint(cs)
	if err != nil {
		// *azure.ConfigError: without the secret.
		c.LoadWarnings = append(c.LoadWarnings, "lease.azblob.account_url was not compared with the endpoint of the connection string in "+
			source+": "+err.Error()+".")
		return
	}
	if got != want {
		st.errorf(p+"account_url", "names the blob endpoint %s, but the connection string in %s names %s; with auth = \"connection-string\" baton uses the connection string's endpoint: remove account_url, or make the two agree",
			want, source, got)
		return
	}
	c.LoadWarnings = append(c.LoadWarnings, "lease.azblob.account_url is redundant: with auth = \"connection-string\" the endpoint comes from the connection string, which names the same one ("+
		got+"); remove account_url.")
}

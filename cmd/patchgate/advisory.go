package main

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

func newAdvisoryCmd() *cobra.Command {
	c := &rolloutClient{op: "advisory"}
	cmd := &cobra.Command{
		Use:   "advisory",
		Short: "Vulnerability intake: import advisories, show the exposure, fetch the feeds",
		Long: `advisory talks to the admin API of a running appliance (the server, token and certificate
pin as for patchgate rollout). Sites without internet download the feeds elsewhere and
import the files: CISA's known_exploited_vulnerabilities.json, OSV records (one, a JSON
list, a directory of them or osv.dev's all.zip) and vendors' CSAF advisories, each with
its .asc signature (and .sha256) next to it — a CSAF document without its signature is
refused, and the signature must be by a pinned provider key.`,
	}
	c.adminAPI(cmd, "print the API's JSON (the only output today)")
	cmd.AddCommand(
		&cobra.Command{Use: "import FILE|DIR", Short: "Import advisory files (KEV, OSV, signed CSAF; a directory or zip of them)",
			Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
				body, name, err := importBody(args[0])
				if err != nil {
					return fmt.Errorf("advisory: import: %w", err)
				}
				return c.callPrint(cmd, "POST", "/api/v1/advisory/import?name="+url.QueryEscape(name), body, nil)
			}},
		c.getCmd("exposure", "Every device's open vulnerabilities, and the findings", "/api/v1/exposure", nil),
		c.getCmd("feeds", "The feeds' state and the stored deliveries", "/api/v1/advisory/feeds", nil),
		&cobra.Command{Use: "fetch FEED", Short: "Fetch a feed now", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return c.callPrint(cmd, "POST", "/api/v1/advisory/feeds/"+url.PathEscape(args[0])+"/fetch", nil, nil)
			}},
	)
	return cmd
}

// importBody is what to send for path: a file as it is, except a CSAF document with
// its .asc (and .sha256) beside it, and a directory, which are packed into a zip.
func importBody(path string) ([]byte, string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, "", err
	}
	name := filepath.Base(path)
	files := map[string]string{} // name in the zip → file
	switch {
	case st.IsDir():
		err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(path, p)
			if err == nil {
				files[filepath.ToSlash(rel)] = p
			}
			return err
		})
		if err != nil {
			return nil, "", err
		}
		name += ".zip"
	case strings.HasSuffix(path, ".json"):
		if _, err := os.Stat(path + ".asc"); err != nil {
			return readAll(path, name)
		}
		for _, ext := range []string{"", ".asc", ".sha256"} {
			if _, err := os.Stat(path + ext); err == nil {
				files[name+ext] = path + ext
			}
		}
		name += ".zip"
	default:
		return readAll(path, name)
	}
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for n, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, "", err
		}
		w, err := zw.Create(n)
		if err != nil {
			return nil, "", err
		}
		if _, err := w.Write(data); err != nil {
			return nil, "", err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return b.Bytes(), name, nil
}

func readAll(path, name string) ([]byte, string, error) {
	b, err := os.ReadFile(path)
	return b, name, err
}

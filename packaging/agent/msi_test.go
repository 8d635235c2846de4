package agentpkg

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// msiTable is one table of an MSI as msiinfo exports it: a header of column names, a
// line of column types, a line naming the table and its keys, then tab-separated rows.
func msiTable(t *testing.T, msi, table string) []map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(run(t, ".", "msiinfo", "export", msi, table), "\r\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("msiinfo export %s: %d lines, want a header", table, len(lines))
	}
	cols := strings.Split(strings.TrimRight(lines[0], "\r"), "\t")
	var rows []map[string]string
	for _, l := range lines[3:] {
		cells := strings.Split(strings.TrimRight(l, "\r"), "\t")
		row := map[string]string{}
		for i, c := range cols {
			if i < len(cells) {
				row[c] = cells[i]
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// TestAgentMSI builds the Windows agent's MSI with msi.sh (wixl) and reads it back
// with msiinfo: the binary in Program Files\Patchgate, the service installed (own
// process, automatic start, LocalSystem, logging to ProgramData) and controlled
// (stopped before upgrade and removal, deleted on removal, not started), the
// services actions in the install sequence, x64. With -short the binary is a stub
// (wixl does not look inside); otherwise the real GOOS=windows build.
func TestAgentMSI(t *testing.T) {
	for _, p := range []string{"wixl", "msiinfo"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (Debian's wixl and msitools packages)", p)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "patchgate-agent.exe")
	if testing.Short() {
		os.WriteFile(bin, []byte("MZ stand-in for the agent"), 0o755)
	} else {
		cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/patchgate/patchgate/cmd/patchgate-agent")
		cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("GOOS=windows go build: %v\n%s", err, out)
		}
	}
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	msi := strings.TrimSpace(run(t, ".", "./msi.sh", bin, "1.4.2~rc1", filepath.Join(dir, "out")))
	if filepath.Base(msi) != "patchgate-agent_1.4.2~rc1_amd64.msi" {
		t.Errorf("msi.sh made %s", msi)
	}

	tables := run(t, ".", "msiinfo", "tables", msi)
	for _, want := range []string{"File", "Component", "Directory", "ServiceInstall", "ServiceControl", "InstallExecuteSequence", "Upgrade"} {
		if !strings.Contains("\n"+tables+"\n", "\n"+want+"\n") {
			t.Errorf("msiinfo tables lacks %s:\n%s", want, tables)
		}
	}
	files := msiTable(t, msi, "File")
	if len(files) != 1 || files[0]["FileName"] != "patchgate-agent.exe" || files[0]["FileSize"] != strconv.FormatInt(fi.Size(), 10) || files[0]["Component_"] != "AgentService" {
		t.Errorf("File rows = %v, want the agent binary of %d bytes", files, fi.Size())
	}
	comps := msiTable(t, msi, "Component")
	if len(comps) != 1 || comps[0]["Directory_"] != "INSTALLDIR" || comps[0]["KeyPath"] != "AgentExe" {
		t.Errorf("Component rows = %v", comps)
	}
	dirs := map[string]map[string]string{}
	for _, d := range msiTable(t, msi, "Directory") {
		dirs[d["Directory"]] = d
	}
	if d := dirs["INSTALLDIR"]; d["Directory_Parent"] != "ProgramFiles64Folder" || d["DefaultDir"] != "Patchgate" {
		t.Errorf("INSTALLDIR = %v, want Program Files\\Patchgate", d)
	}
	si := msiTable(t, msi, "ServiceInstall")
	const ownProcess, autoStart, errorNormal = "16", "2", "1"
	if len(si) != 1 || si[0]["Name"] != "patchgate-agent" || si[0]["ServiceType"] != ownProcess || si[0]["StartType"] != autoStart ||
		si[0]["ErrorControl"] != errorNormal || si[0]["StartName"] != "LocalSystem" || si[0]["Component_"] != "AgentService" ||
		si[0]["Arguments"] != `--log-file "[CommonAppDataFolder]Patchgate\agent.log"` {
		t.Errorf("ServiceInstall rows = %v", si)
	}
	// msidbServiceControlEvent: 0x1 start, 0x2 stop, 0x8 delete at install; 0x10, 0x20,
	// 0x80 the same at uninstall.
	sc := msiTable(t, msi, "ServiceControl")
	if len(sc) != 1 || sc[0]["Name"] != "patchgate-agent" || sc[0]["Event"] != strconv.Itoa(0x2|0x20|0x80) || sc[0]["Wait"] != "1" {
		t.Errorf("ServiceControl rows = %v, want stop at install and uninstall, delete at uninstall, no start", sc)
	}
	seq := map[string]bool{}
	for _, a := range msiTable(t, msi, "InstallExecuteSequence") {
		seq[a["Action"]] = true
	}
	for _, a := range []string{"StopServices", "DeleteServices", "InstallFiles", "InstallServices"} {
		if !seq[a] {
			t.Errorf("InstallExecuteSequence lacks %s", a)
		}
	}
	for _, p := range msiTable(t, msi, "Property") {
		if p["Property"] == "ProductVersion" && p["Value"] != "1.4.2" {
			t.Errorf("ProductVersion = %q, want 1.4.2 (numeric, from 1.4.2~rc1)", p["Value"])
		}
	}
	if info := run(t, ".", "msiinfo", "suminfo", msi); !strings.Contains(info, "Template: x64;1033") {
		t.Errorf("summary information is not x64:\n%s", info)
	}
}

// Package abupdate installs appliance versions side by side and lets systemd-boot's boot
// counting pick the one that works.
//
// A version is two files: a root filesystem image (ext4, read-only) and a unified kernel
// image (UKI) whose command line names that root by filesystem UUID. The disk has two
// root slots; the running version's root is in one, and Install writes the new root into
// the other, then the new UKI onto the EFI system partition as
// EFI/Linux/patchgate_VERSION+3-0.efi. systemd-boot boots the newest entry that has
// tries left, counting down; systemd-bless-boot drops the counter once the daemon is up
// (boot-complete.target requires it); a version that fails three times is skipped and
// the previous one boots again. Rollback marks the running version bad by hand.
//
// Everything works on plain paths (the ESP's mount point, the slots' block devices), so
// tests run on a temporary directory and files standing in for partitions. An Updater is
// not safe for concurrent use: one install or rollback at a time.
package abupdate

// Package image boots the built appliance image in QEMU (OVMF, software emulation) and
// checks that the daemon comes up, answers /readyz through a port forward, and that a
// deliberately broken next version falls back to the previous one by itself.
//
// It needs `make image-test` (which builds the image with its test artifacts and sets
// PATCHGATE_IMAGE_DIR); a plain `go test ./...` skips it.
package image

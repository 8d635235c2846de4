# Appliance image targets; the top-level Makefile includes this file. See image/README.md.
#   make image       image/out/patchgate-$(IMAGE_VERSION).{raw,qcow2,vmdk,ova} + SHA256SUMS
#   make image-test  build with test artifacts, boot in QEMU/OVMF, check ready + fallback
#   make deb         image/out/patchgate_$(IMAGE_VERSION)_amd64.deb, lintian, install test
# Needs (Debian): mmdebstrap qemu-utils dosfstools mtools fdisk e2fsprogs binutils zstd
# dpkg-dev; image-test also qemu-system-x86 ovmf; deb also lintian. Run as root.

# Dev builds are numbered by commit count, so each commit's image sorts after the last
# one (systemd-boot boots the newest). Release builds set IMAGE_VERSION=1.2.3.
IMAGE_VERSION ?= 0.1.$(shell git rev-list --count HEAD 2>/dev/null || echo 0)
IMAGE_OUT     ?= image/out
IMAGE_CACHE   ?= image/cache
IMAGE_EPOCH   ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 1700000000)
IMAGE_COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
IMAGE_DATE    := $(shell date -u -d @$(IMAGE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)
IMAGE_BIN     := $(IMAGE_OUT)/patchgate
IMAGE_NICE    ?= nice -n 10
IMAGE_ENV      = VERSION=$(IMAGE_VERSION) BINARY=$(abspath $(IMAGE_BIN)) \
	CONFIG=$(abspath configs/patchgate.yaml) OUT=$(abspath $(IMAGE_OUT)) \
	CACHE=$(abspath $(IMAGE_CACHE)) SOURCE_DATE_EPOCH=$(IMAGE_EPOCH)

.PHONY: image image-test image-bin deb image-clean image-publish

image-bin:
	@mkdir -p $(IMAGE_OUT) $(IMAGE_CACHE)
	@# A go.mod keeps `go build ./...` out of the cached Debian root filesystems.
	@test -f $(IMAGE_CACHE)/go.mod || printf 'module patchgate.invalid/imagecache\n' >$(IMAGE_CACHE)/go.mod
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w -X main.version=$(IMAGE_VERSION) -X main.commit=$(IMAGE_COMMIT) -X main.date=$(IMAGE_DATE)' -o $(IMAGE_BIN) ./cmd/patchgate

image: image-bin
	$(IMAGE_NICE) env $(IMAGE_ENV) image/scripts/build.sh

image-test: image-bin
	$(IMAGE_NICE) env $(IMAGE_ENV) TEST_ARTIFACTS=1 FORMATS=raw image/scripts/build.sh
	PATCHGATE_IMAGE_DIR=$(abspath $(IMAGE_OUT)) go test -v -count=1 -timeout 90m -run TestImageBoot ./test/image

deb: image-bin
	$(IMAGE_NICE) env $(IMAGE_ENV) image/scripts/deb.sh

image-clean:
	rm -rf $(IMAGE_OUT) $(IMAGE_CACHE)/work

# Publish the update bundle of `make image` as TUF targets into the repository at
# IMAGE_TUF_DIR (made with `patchgate tuf init --dir DIR`): the compressed root, the UKI
# and the manifest under appliance/, each with the manifest as custom metadata, so an
# appliance verifies them like any other target before `patchgate image install`.
IMAGE_TUF_DIR ?=
image-publish: image-bin
	@test -n "$(IMAGE_TUF_DIR)" || (echo "image-publish: set IMAGE_TUF_DIR to a repository made with patchgate tuf init"; exit 1)
	@test -f $(IMAGE_OUT)/update/patchgate-$(IMAGE_VERSION).update.json || (echo "image-publish: run make image IMAGE_VERSION=$(IMAGE_VERSION) first"; exit 1)
	set -e; u=$(IMAGE_OUT)/update; m=$$u/patchgate-$(IMAGE_VERSION).update.json; c="$$(tr -d '\n' <$$m)"; \
	for f in patchgate-$(IMAGE_VERSION).root.img.gz patchgate_$(IMAGE_VERSION).efi patchgate-$(IMAGE_VERSION).update.json; do \
		$(IMAGE_BIN) tuf --dir $(IMAGE_TUF_DIR) add $$u/$$f --path appliance/$$f --custom "$$c"; \
	done; \
	$(IMAGE_BIN) tuf --dir $(IMAGE_TUF_DIR) publish

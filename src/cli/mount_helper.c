/*
 * mount_helper.c - Zero as mount(8) and umount(8) call it: `mount -t
 * fuse.zero CACHE MOUNTPOINT -o config=FILE,...` and an /etc/fstab line of
 * type fuse.zero run /sbin/mount.fuse.zero (a link to zero), and `umount
 * MOUNTPOINT` of a fuse.zero mount runs /sbin/umount.fuse.zero.
 *
 * mount(8) calls:  mount.fuse.zero SPEC DIR [-sfnvr] [-N NS] [-o OPTIONS] [-t TYPE]
 * umount(8) calls: umount.fuse.zero DIR [-nlfvr] [-N NS] [-t TYPE]
 *
 * Options mount(8) and systemd use for themselves (_netdev, noauto, nofail,
 * x-systemd.*, ...) are dropped, config= and Zero's own options are taken,
 * and the rest goes to FUSE as `zero mount -o` would pass it.
 */
#include "cli/cli.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Options that are mount(8)'s, fstab's or systemd's business, not the filesystem's. */
static bool option_ignored(const char *opt, size_t n)
{
	static const char *const names[] = {"_netdev", "noauto", "auto",  "nofail", "user",
					    "users",   "nouser", "owner", "group",  "defaults"};

	if ((n > 2 && strncmp(opt, "x-", 2) == 0) || (n > 8 && strncmp(opt, "comment=", 8) == 0) ||
	    (n > 7 && strncmp(opt, "helper=", 7) == 0))
		return true;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && strncmp(opt, names[i], n) == 0)
			return true;
	return false;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: mount.fuse.zero CACHE MOUNTPOINT [-o OPTIONS] [-f] [-n] [-v]\n\n"
		"Zero as mount(8) runs it for `mount -t fuse.zero CACHE MOUNTPOINT` and /etc/fstab\n"
		"lines of type fuse.zero:\n\n"
		"  /var/lib/zero/cache  /mnt/zero  fuse.zero  config=/etc/zero/config.yml,_netdev,nofail  0  0\n\n"
		"options: config=FILE (the configuration), force, writeback_cache,\n"
		"no_writeback_cache, sync_upload;\n"
		"_netdev, noauto, nofail, x-systemd.* and the like are left to mount(8) and\n"
		"systemd; the rest are FUSE mount options (ro, allow_other, ...). Unmount with\n"
		"umount MOUNTPOINT, which waits as `zero umount` does (the mount notes\n"
		"helper=fuse.zero in /run/mount/utab for umount(8)).\n");
}

int cli_mount_helper(int argc, char **argv)
{
	const char *spec = NULL, *dir = NULL, *opts = NULL;
	char fuse_opts[4096] = "", config[4096] = "";
	char *args[16];
	bool fake = false, force = false, sync_upload = false;
	const char *writeback = NULL; /* the option of zero mount, if given */
	int n = 0;

	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			opts = argv[++i];
		} else if ((strcmp(argv[i], "-t") == 0 || strcmp(argv[i], "-N") == 0) &&
			   i + 1 < argc) {
			i++; /* the type is ours; namespaces are not supported */
		} else if (argv[i][0] == '-') {
			/* -f: fake (nothing to do); -s sloppy, -n no mtab, -v verbose, -r ro */
			for (const char *f = argv[i] + 1; *f; f++) {
				if (*f == 'f')
					fake = true;
				else if (*f == 'r')
					snprintf(fuse_opts, sizeof(fuse_opts), "ro");
				else if (!strchr("snv", *f)) {
					usage(stderr);
					return 2;
				}
			}
		} else if (!spec) {
			spec = argv[i];
		} else if (!dir) {
			dir = argv[i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!spec || !dir) {
		usage(stderr);
		return 2;
	}
	for (const char *p = opts; p && *p;) {
		size_t len = strcspn(p, ",");
		if (len > 7 && strncmp(p, "config=", 7) == 0) {
			snprintf(config, sizeof(config), "%.*s", (int)(len - 7), p + 7);
		} else if (len == 5 && strncmp(p, "force", 5) == 0) {
			force = true;
		} else if (len == 15 && strncmp(p, "writeback_cache", 15) == 0) {
			writeback = "--writeback-cache";
		} else if (len == 18 && strncmp(p, "no_writeback_cache", 18) == 0) {
			writeback = "--no-writeback-cache";
		} else if (len == 11 && strncmp(p, "sync_upload", 11) == 0) {
			sync_upload = true;
		} else if (len && !option_ignored(p, len)) {
			size_t used = strlen(fuse_opts);
			if (used + len + 2 >= sizeof(fuse_opts)) {
				fprintf(stderr, "zero: -o: the options are too long\n");
				return 1;
			}
			snprintf(fuse_opts + used, sizeof(fuse_opts) - used, "%s%.*s",
				 used ? "," : "", (int)len, p);
		}
		p += len + (p[len] == ',');
	}
	if (sync_upload) {
		size_t used = strlen(fuse_opts);
		snprintf(fuse_opts + used, sizeof(fuse_opts) - used, "%ssync_upload",
			 used ? "," : "");
	}
	if (fake)
		return 0;
	args[n++] = "mount";
	args[n++] = (char *)dir;
	args[n++] = (char *)spec;
	if (config[0]) {
		args[n++] = "--config";
		args[n++] = config;
	}
	if (fuse_opts[0]) {
		args[n++] = "-o";
		args[n++] = fuse_opts;
	}
	if (force)
		args[n++] = "--force";
	if (writeback)
		args[n++] = (char *)writeback;
	args[n] = NULL;
	return cli_mount(n, args);
}

int cli_umount_helper(int argc, char **argv)
{
	const char *dir = NULL;
	char *args[4];
	bool lazy = false;
	int n = 0;

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-t") == 0 || strcmp(argv[i], "-N") == 0) && i + 1 < argc) {
			i++;
		} else if (argv[i][0] == '-') {
			for (const char *f = argv[i] + 1; *f; f++) {
				if (*f == 'l')
					lazy = true;
				else if (!strchr("nfvr", *f)) {
					fprintf(stderr, "usage: umount.fuse.zero MOUNTPOINT [-l]\n");
					return 2;
				}
			}
		} else if (!dir) {
			dir = argv[i];
		} else {
			fprintf(stderr, "usage: umount.fuse.zero MOUNTPOINT [-l]\n");
			return 2;
		}
	}
	if (!dir) {
		fprintf(stderr, "usage: umount.fuse.zero MOUNTPOINT [-l]\n");
		return 2;
	}
	args[n++] = "umount";
	args[n++] = (char *)dir;
	if (lazy)
		args[n++] = "--lazy";
	args[n] = NULL;
	return cli_umount(n, args);
}

/*
 * main.c - the `zero` program: dispatches to a subcommand.
 */
#include "cli/cli.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
    {"mount", cli_mount, "mount a Zero filesystem"},
    {"umount", cli_umount, "unmount a Zero filesystem and wait for its daemon to finish"},
    {"fsck", cli_fsck, "check (and repair) the metadata of an unmounted cache"},
    {"bucket", cli_bucket, "operate on the configured bucket (check, ls, put, get, rm, stat)"},
    {"recover", cli_recover, "list the states of the filesystem the bucket can restore"},
    {"checkpoint", cli_checkpoint, "create, list or delete named states of a mounted filesystem"},
    {"passwd", cli_passwd, "change the passphrase of an encrypted filesystem"},
    {"status", cli_status, "show the cache, the upload queue, the bucket and fetches"},
    {"sync", cli_sync, "wait until the bucket has everything written so far"},
    {"prefetch", cli_prefetch, "bring files into the local cache now"},
    {"pin", cli_pin, "keep files local whatever the pressure on the cache"},
    {"unpin", cli_unpin, "let pinned files be evicted again"},
    {"evict", cli_evict, "drop the local copy of files' uploaded data now"},
};

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: zero COMMAND [ARGS...]\n"
	    "       zero --version | --help\n\n"
	    "Zero is a filesystem whose capacity is a bucket and whose speed is the local disk.\n\n"
	    "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nRun 'zero COMMAND --help' for a command's options.\n");
}

int cli_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int main(int argc, char **argv)
{
	/* libcurl runs without signals: a write to a closed connection must not kill us */
	signal(SIGPIPE, SIG_IGN);
	/* called by another name: mount(8)'s and umount(8)'s helpers (links to zero) */
	const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	if (strcmp(self, "mount.fuse.zero") == 0)
		return cli_mount_helper(argc, argv);
	if (strcmp(self, "umount.fuse.zero") == 0)
		return cli_umount_helper(argc, argv);
	/* the seed's commands */
	if (strcmp(self, "zero-fuse") == 0)
		return cli_zero_fuse(argc, argv);
	if (strcmp(self, "zero-worker") == 0)
		return cli_worker(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (cli_is_help(argv[1])) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("zero %s\n", ZERO_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "zero: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}

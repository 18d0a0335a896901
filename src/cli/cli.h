/*
 * cli.h - the subcommands of the `zero` program.
 *
 * Each subcommand is a function that takes the arguments after its name
 * (argv[0] is the subcommand's name), prints its own errors to stderr, and
 * returns the process exit status: 0 success, 1 failure, 2 usage error.
 */
#ifndef ZERO_CLI_H
#define ZERO_CLI_H

int cli_mount(int argc, char **argv);
int cli_umount(int argc, char **argv);
int cli_fsck(int argc, char **argv);
int cli_bucket(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_prefetch(int argc, char **argv);
int cli_pin(int argc, char **argv);
int cli_unpin(int argc, char **argv);
int cli_evict(int argc, char **argv);

int cli_recover(int argc, char **argv);
int cli_checkpoint(int argc, char **argv);
int cli_passwd(int argc, char **argv);
int cli_sync(int argc, char **argv);
/* mount_helper.c: zero called as /sbin/mount.fuse.zero and /sbin/umount.fuse.zero */
int cli_mount_helper(int argc, char **argv);
int cli_umount_helper(int argc, char **argv);
/* worker.c: the seed's commands, zero called as zero-fuse and zero-worker */
int cli_zero_fuse(int argc, char **argv);
int cli_worker(int argc, char **argv);

struct stat;
/* residency.c: the one live Zero mount into MNT (else says why, -ENOENT/-EEXIST). */
int zero_mount_only(char *mnt, size_t size);
/* residency.c: PATH is on a Zero mount (*ST its stat), else says why. */
int check_on_zero(const char *path, struct stat *st);

/* True when ARG is -h or --help. */
int cli_is_help(const char *arg);

#endif /* ZERO_CLI_H */

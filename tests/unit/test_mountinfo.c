/* test_mountinfo.c - unit tests of reading the kernel's mount list (common/mountinfo.c). */
#include "common/mountinfo.h"
#include "../unit/test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* The mount listed last at MNT into OUT (its type copied to FSTYPE); false if none. */
static bool find_last(const char *mnt, struct mountinfo *out, char *fstype, size_t size)
{
	struct mountinfo_reader r;
	struct mountinfo e;
	bool found = false;

	if (mountinfo_open(&r) != 0)
		return false;
	while (mountinfo_next(&r, &e)) {
		if (strcmp(e.mountpoint, mnt) == 0) {
			*out = e;
			snprintf(fstype, size, "%s", e.fstype);
			found = true;
		}
	}
	mountinfo_close(&r);
	return found;
}

/* The root is listed, with the device its files have. */
static void test_root_and_its_device(void)
{
	struct mountinfo e;
	struct stat st;
	char fstype[64];

	TEST_ASSERT(find_last("/", &e, fstype, sizeof(fstype)));
	TEST_ASSERT(fstype[0] != '\0');
	TEST_ASSERT_EQ_INT(stat("/", &st), 0);
	TEST_ASSERT_EQ_INT(e.major, major(st.st_dev));
	TEST_ASSERT_EQ_INT(e.minor, minor(st.st_dev));
}

/*
 * A mountpoint with a space, a tab and a backslash in its name (escaped by
 * the kernel) is found by its real name, with its source, type and device.
 * Mounting needs root, as the whole suite does.
 */
static void test_escaped_names(void)
{
	char dir[] = "/tmp/zero-mountinfo-XXXXXX", mnt[128], fstype[64];
	struct mountinfo_reader r;
	struct mountinfo e;
	struct stat st;
	bool seen = false;

	TEST_ASSERT(mkdtemp(dir) != NULL);
	snprintf(mnt, sizeof(mnt), "%s/a b\tc\\d", dir);
	TEST_ASSERT_EQ_INT(mkdir(mnt, 0755), 0);
	TEST_ASSERT_EQ_INT(mount("my source\\x", mnt, "tmpfs", 0, "size=1m"), 0);
	TEST_ASSERT(find_last(mnt, &e, fstype, sizeof(fstype)));
	TEST_ASSERT_EQ_STR(fstype, "tmpfs");
	TEST_ASSERT_EQ_INT(stat(mnt, &st), 0);
	TEST_ASSERT_EQ_INT(e.major, major(st.st_dev));
	TEST_ASSERT_EQ_INT(e.minor, minor(st.st_dev));
	TEST_ASSERT_EQ_INT(mountinfo_open(&r), 0);
	while (mountinfo_next(&r, &e))
		if (strcmp(e.mountpoint, mnt) == 0)
			seen = strcmp(e.source, "my source\\x") == 0;
	mountinfo_close(&r);
	TEST_ASSERT(seen);
	TEST_ASSERT_EQ_INT(umount(mnt), 0);
	TEST_ASSERT_EQ_INT(rmdir(mnt), 0);
	TEST_ASSERT_EQ_INT(rmdir(dir), 0);
}

/*
 * Two mounts from one source: the one mounted last is found, with its
 * device and mountpoint; none once both are gone.
 */
static void test_find_source_takes_the_last(void)
{
	char dir[] = "/tmp/zero-mountinfo-XXXXXX", a[96], b[96], got[128];
	unsigned major = 0, minor = 0;
	struct stat st;

	TEST_ASSERT(mkdtemp(dir) != NULL);
	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	TEST_ASSERT_EQ_INT(mkdir(a, 0755), 0);
	TEST_ASSERT_EQ_INT(mkdir(b, 0755), 0);
	TEST_ASSERT_EQ_INT(mount(dir, a, "tmpfs", 0, "size=1m"), 0);
	TEST_ASSERT_EQ_INT(mount(dir, b, "tmpfs", 0, "size=1m"), 0);
	TEST_ASSERT_EQ_INT(mountinfo_find_source("tmpfs", dir, &major, &minor, got, sizeof(got)),
			   0);
	TEST_ASSERT_EQ_STR(got, b);
	TEST_ASSERT_EQ_INT(stat(b, &st), 0);
	TEST_ASSERT_EQ_INT(major, major(st.st_dev));
	TEST_ASSERT_EQ_INT(minor, minor(st.st_dev));
	TEST_ASSERT_EQ_INT(mountinfo_find_source("ext4", dir, &major, &minor, NULL, 0), -ENOENT);
	TEST_ASSERT_EQ_INT(umount(b), 0);
	TEST_ASSERT_EQ_INT(mountinfo_find_source("tmpfs", dir, &major, &minor, got, sizeof(got)),
			   0);
	TEST_ASSERT_EQ_STR(got, a);
	TEST_ASSERT_EQ_INT(umount(a), 0);
	TEST_ASSERT_EQ_INT(mountinfo_find_source("tmpfs", dir, &major, &minor, NULL, 0), -ENOENT);
	TEST_ASSERT_EQ_INT(rmdir(a), 0);
	TEST_ASSERT_EQ_INT(rmdir(b), 0);
	TEST_ASSERT_EQ_INT(rmdir(dir), 0);
}

int main(void)
{
	TEST_RUN(test_root_and_its_device);
	TEST_RUN(test_escaped_names);
	TEST_RUN(test_find_source_takes_the_last);
	return TEST_MAIN_END();
}

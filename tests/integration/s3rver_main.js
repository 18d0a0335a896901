#!/usr/bin/env node
'use strict';
// Starts s3rver's own command line (same arguments), with two faults of its
// file store mended so that it keeps the promises of the S3 API that Zero
// relies on, and in a process that survives any error s3rver leaves
// unhandled.
//
// 1. A PUT is atomic and acknowledged once stored. s3rver wrote the body into
//    the object's own file as it arrived and answered when the body had been
//    read, not written: a GET right after the answer could read part of an
//    object, and two PUTs of one key that overlapped (a retry after a
//    timeout, or a chunk uploaded again, encrypted with another nonce) wrote
//    into one file and left bytes neither had sent. Zero evicts its local
//    copy of a chunk once its PUT is acknowledged, so that was data lost.
//    Here the body goes to a temporary file beside the data directory, is
//    fully written, and is renamed over the object; its MD5 and metadata
//    files are replaced the same way.
// 2. Deleting an object removed its directory when it looked empty, racing
//    with a PUT into that directory (an ENOENT nobody caught). A PUT now
//    recreates the directory and renames again; a delete leaves a directory
//    that is no longer empty.
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { pipeline, Transform } = require('stream');

const FilesystemStore = require('./node_modules/s3rver/lib/stores/filesystem.js');
const S3Object = require('./node_modules/s3rver/lib/models/object.js');

let tmpSeq = 0;
const tmpDirs = new Map(); // store root -> its directory of temporary files, made once

// a name for a temporary file, outside the buckets (listings never see it)
// and on their filesystem (renamed into them)
function tmpName(store) {
  const root = path.resolve(store.rootDirectory);
  let dir = tmpDirs.get(root);
  if (!dir) {
    dir = path.join(path.dirname(root), path.basename(root) + '.tmp');
    fs.mkdirSync(dir, { recursive: true });
    tmpDirs.set(root, dir);
  }
  return path.join(dir, `${process.pid}.${++tmpSeq}`);
}

// rename FROM to TO, creating TO's directory as often as a delete removes it
async function renameInto(from, to) {
  for (;;) {
    await fs.promises.mkdir(path.dirname(to), { recursive: true });
    try {
      await fs.promises.rename(from, to);
      return;
    } catch (err) {
      if (err.code !== 'ENOENT' || !fs.existsSync(from)) throw err;
    }
  }
}

// replace file TO whole: DATA (bytes, or a function that writes the file it
// is given) goes to a temporary file first, which is then renamed over TO
async function replaceFile(store, to, data) {
  const tmp = tmpName(store);
  try {
    if (typeof data === 'function') await data(tmp);
    else await fs.promises.writeFile(tmp, data);
    await renameInto(tmp, to);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
}

FilesystemStore.prototype.putObject = async function putObject(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  const md5Context = crypto.createHash('md5');
  let size = 0;
  if (Buffer.isBuffer(object.content)) {
    md5Context.update(object.content);
    size = object.content.length;
    await replaceFile(this, objectPath, object.content);
  } else {
    const count = new Transform({
      transform(chunk, encoding, callback) {
        md5Context.update(chunk, encoding);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    await replaceFile(this, objectPath, tmp => new Promise((resolve, reject) => {
      pipeline(object.content, count, fs.createWriteStream(tmp), err =>
        err ? reject(err) : resolve(),
      );
    }));
  }
  const md5 = md5Context.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, md5);
  return { size, md5 };
};

// s3rver's own, but each file written aside and renamed over the object's
FilesystemStore.prototype.putMetadata = async function putMetadata(bucket, key, metadata, md5) {
  const json = {};
  for (const [name, value] of Object.entries(metadata)) {
    if (S3Object.ALLOWED_METADATA.includes(name) || name.startsWith('x-amz-meta-')) {
      json[name] = value;
    }
  }
  if (md5) await replaceFile(this, this.getResourcePath(bucket, key, 'object.md5'), md5);
  await replaceFile(
    this,
    this.getResourcePath(bucket, key, 'metadata.json'),
    JSON.stringify(json, null, 2),
  );
};

FilesystemStore.prototype.deleteObject = async function deleteObject(bucket, key) {
  await Promise.all(
    ['object', 'object.md5', 'metadata.json'].map(resource =>
      fs.promises.rm(this.getResourcePath(bucket, key, resource), { force: true }),
    ),
  );
  // remove the directories this left empty, and stop at one that is not
  const parts = key.split('/');
  parts.pop();
  for (; parts.length; parts.pop()) {
    try {
      await fs.promises.rmdir(path.join(this.getBucketPath(bucket), ...parts));
    } catch (err) {
      if (['ENOTEMPTY', 'EEXIST', 'ENOENT'].includes(err.code)) return;
      throw err;
    }
  }
};

process.on('uncaughtException', (err) => {
  console.error('s3rver: uncaught exception (server kept running):', err && err.stack ? err.stack : err);
});
process.on('unhandledRejection', (err) => {
  console.error('s3rver: unhandled rejection (server kept running):', err && err.stack ? err.stack : err);
});
require('./node_modules/s3rver/bin/s3rver.js');

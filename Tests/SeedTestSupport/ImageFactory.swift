import Foundation
import SeedOCI

/// Makes OCI image layouts on disk with real layer tarballs (GNU tar, gzip), for skopeo to turn
/// into archives.
public enum ImageFactory {
    /// How to build one layer.
    public struct Layer: Sendable {
        /// Number of files in it.
        public var files: Int
        /// Bytes per file.
        public var fileSize: Int
        /// gzip the layer or leave it uncompressed.
        public var gzip: Bool
        /// Random (incompressible) file content instead of repeated text.
        public var random: Bool

        /// Makes a layer spec.
        public init(files: Int = 3, fileSize: Int = 4096, gzip: Bool = true, random: Bool = false) {
            self.files = files
            self.fileSize = fileSize
            self.gzip = gzip
            self.random = random
        }
    }

    /// A built image.
    public struct Image: Sendable {
        /// The layout directory.
        public var layout: String
        /// The tag inside the layout (`oci:LAYOUT:TAG`).
        public var tag: String
        /// The root descriptor (index if several platforms).
        public var root: Descriptor
        /// Per platform, its manifest descriptor.
        public var manifests: [Platform: Descriptor]
    }

    /// Builds an image with `layers` for each platform into the OCI layout at `layout` (created or
    /// extended), tagged `tag`. `salt` makes layer content unique across images.
    public static func make(layout: String, tag: String, platforms: [Platform] = [Platform(os: "linux", architecture: "amd64")], layers: [Layer], salt: String = "") throws -> Image {
        let fm = FileManager.default
        try fm.createDirectory(atPath: layout + "/blobs/sha256", withIntermediateDirectories: true)
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: layout + "/oci-layout"))
        let work = layout + "/.work-" + UUID().uuidString
        defer { try? fm.removeItem(atPath: work) }
        var manifests: [Platform: Descriptor] = [:]
        var entries: [Descriptor] = []
        for platform in platforms {
            var layerDescs: [Descriptor] = []
            var diffIDs: [Digest] = []
            for (i, spec) in layers.enumerated() {
                let dir = "\(work)/\(platform.os)-\(platform.architecture)-\(i)"
                try fm.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
                for f in 0..<spec.files {
                    let path = "\(dir)/data/file-\(f).bin"
                    if spec.random {
                        _ = try run(["sh", "-c", "head -c \(spec.fileSize) /dev/urandom > '\(path)'"])
                    } else {
                        let line = "\(tag) \(salt) \(platform) layer \(i) file \(f)\n"
                        var s = ""
                        while s.utf8.count < spec.fileSize { s += line }
                        try Data(s.utf8.prefix(spec.fileSize)).write(to: URL(fileURLWithPath: path))
                    }
                }
                let tarPath = "\(dir)/layer.tar"
                try run(["tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-C", dir + "/data", "-cf", tarPath, "."])
                diffIDs.append(try sha256(file: tarPath))
                var blobPath = tarPath
                var mediaType = MediaType.ociLayer
                if spec.gzip {
                    try run(["gzip", "-n", "-k", tarPath])
                    blobPath = tarPath + ".gz"
                    mediaType = MediaType.ociLayerGzip
                }
                let d = try sha256(file: blobPath)
                let size = try (fm.attributesOfItem(atPath: blobPath)[.size] as! NSNumber).int64Value
                try? fm.removeItem(atPath: layout + "/blobs/sha256/" + d.hex)
                try fm.copyItem(atPath: blobPath, toPath: layout + "/blobs/sha256/" + d.hex)
                layerDescs.append(Descriptor(mediaType: mediaType, digest: d, size: size))
            }
            let config = try json([
                "architecture": platform.architecture, "os": platform.os,
                "config": ["Cmd": ["/bin/sh"], "Labels": ["salt": salt]],
                "rootfs": ["type": "layers", "diff_ids": diffIDs.map(\.string)],
            ] as [String: Any])
            let configDesc = try put(config, type: MediaType.ociConfig, layout: layout)
            let manifest = try encode(ImageManifest(mediaType: MediaType.ociManifest, config: configDesc, layers: layerDescs))
            var md = try put(manifest, type: MediaType.ociManifest, layout: layout)
            md.platform = platform
            manifests[platform] = md
            entries.append(md)
        }
        var root: Descriptor
        if platforms.count == 1 {
            root = manifests[platforms[0]]!
            root.platform = nil
        } else {
            let index = try encode(ImageIndex(mediaType: MediaType.ociIndex, manifests: entries))
            root = try put(index, type: MediaType.ociIndex, layout: layout)
        }
        // Add to (or replace in) the layout's index.json.
        var top = (try? JSONDecoder().decode(ImageIndex.self, from: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json")))) ?? ImageIndex(manifests: [])
        top.manifests.removeAll { $0.annotations?[Descriptor.Annotation.refName] == tag }
        var entry = root
        entry.annotations = [Descriptor.Annotation.refName: tag]
        top.manifests.append(entry)
        try encode(top).write(to: URL(fileURLWithPath: layout + "/index.json"))
        return Image(layout: layout, tag: tag, root: root, manifests: manifests)
    }

    static func put(_ data: Data, type: String, layout: String) throws -> Descriptor {
        let d = Digest.of(data)
        try data.write(to: URL(fileURLWithPath: layout + "/blobs/sha256/" + d.hex))
        return Descriptor(mediaType: type, digest: d, size: Int64(data.count))
    }

    static func encode<T: Encodable>(_ v: T) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try e.encode(v)
    }

    static func json(_ v: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .withoutEscapingSlashes])
    }
}

/// Runs skopeo with a private temp dir; returns stdout.
@discardableResult
public func skopeo(_ args: [String]) throws -> String {
    try run([try tool("skopeo")] + args).stdout
}

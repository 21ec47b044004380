//! What a download really is, read from its first bytes (magic numbers), not from its name
//! or its `Content-Type`: an `.exe` served as `application/pdf` is an executable.
//!
//! Office documents and e-books are ZIP files too: a ZIP whose first entry is
//! `[Content_Types].xml`, `mimetype`, `META-INF/` or an Office folder is a document, not an
//! archive.

/// The kinds of file a role's `files` setting can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    Executable,
    Installer,
    Torrent,
    Archive,
    DiskImage,
    Video,
    Audio,
    /// HLS and DASH manifests (the start of a video stream).
    Streaming,
}

impl FileKind {
    pub const ALL: [FileKind; 8] = [
        FileKind::Executable,
        FileKind::Installer,
        FileKind::Torrent,
        FileKind::Archive,
        FileKind::DiskImage,
        FileKind::Video,
        FileKind::Audio,
        FileKind::Streaming,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FileKind::Executable => "executable",
            FileKind::Installer => "installer",
            FileKind::Torrent => "torrent",
            FileKind::Archive => "archive",
            FileKind::DiskImage => "disk-image",
            FileKind::Video => "video",
            FileKind::Audio => "audio",
            FileKind::Streaming => "streaming",
        }
    }

    pub fn from_name(name: &str) -> Option<FileKind> {
        FileKind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn index(self) -> usize {
        FileKind::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// Bytes [`sniff`] reads at most (a tar header's `ustar` is at 257).
pub const SNIFF_BYTES: usize = 512;

/// The kind of file whose first bytes are `head` (up to [`SNIFF_BYTES`]), if it is one
/// of [`FileKind`]. `path` (the URL's path) separates an installer from a plain executable
/// and names an `.msi`.
pub fn sniff(head: &[u8], path: &str) -> Option<FileKind> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    let lower_path = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let installer_name = [
        ".msi", ".msix", ".appx", ".pkg", ".deb", ".rpm", "setup", "install",
    ]
    .iter()
    .any(|n| lower_path.contains(n));
    let executable = at(0, b"MZ")
        || at(0, b"\x7fELF")
        || at(0, &[0xfe, 0xed, 0xfa, 0xce])
        || at(0, &[0xfe, 0xed, 0xfa, 0xcf])
        || at(0, &[0xce, 0xfa, 0xed, 0xfe])
        || at(0, &[0xcf, 0xfa, 0xed, 0xfe])
        || at(0, b"#!");
    if executable {
        return Some(if installer_name {
            FileKind::Installer
        } else {
            FileKind::Executable
        });
    }
    if at(0, b"!<arch>\ndebian") || at(0, &[0xed, 0xab, 0xee, 0xdb]) || at(0, b"xar!") {
        return Some(FileKind::Installer);
    }
    // OLE compound files are Office 97 documents as well as MSI installers: the name says.
    if at(0, &[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]) {
        return lower_path.ends_with(".msi").then_some(FileKind::Installer);
    }
    if at(0, b"d8:announce") || at(0, b"d13:announce-list") || at(0, b"d4:info") {
        return Some(FileKind::Torrent);
    }
    if at(0, b"PK\x03\x04") {
        let name_len = head
            .get(26..28)
            .map_or(0, |b| usize::from(u16::from_le_bytes([b[0], b[1]])));
        let name = head.get(30..30 + name_len.min(64)).unwrap_or(&[]);
        let document = [
            &b"[Content_Types].xml"[..],
            b"mimetype",
            b"META-INF/",
            b"word/",
            b"xl/",
            b"ppt/",
            b"docProps/",
            b"_rels/",
        ]
        .iter()
        .any(|d| name.starts_with(d));
        if document {
            return None;
        }
        if lower_path.ends_with(".apk")
            || lower_path.ends_with(".xpi")
            || lower_path.ends_with(".crx")
        {
            return Some(FileKind::Installer);
        }
        return Some(FileKind::Archive);
    }
    if at(0, b"Rar!\x1a\x07")
        || at(0, &[0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])
        || at(0, &[0xfd, b'7', b'z', b'X', b'Z', 0])
        || at(0, b"BZh")
        || at(0, &[0x1f, 0x8b])
        || at(257, b"ustar")
        || at(0, &[0x28, 0xb5, 0x2f, 0xfd])
    {
        return Some(FileKind::Archive);
    }
    if at(0, b"conectix") || at(0, b"KDMV") || at(0, b"QFI\xfb") || at(0, b"vhdxfile") {
        return Some(FileKind::DiskImage);
    }
    if lower_path.ends_with(".iso") || lower_path.ends_with(".dmg") || lower_path.ends_with(".img")
    {
        // ISO 9660's and DMG's marks lie beyond the first bytes: the name decides.
        return Some(FileKind::DiskImage);
    }
    if at(4, b"ftyp") {
        let brand = head.get(8..12).unwrap_or(&[]);
        return Some(if brand == b"M4A " || brand == b"M4B " {
            FileKind::Audio
        } else {
            FileKind::Video
        });
    }
    if at(0, &[0x1a, 0x45, 0xdf, 0xa3])
        || (at(0, b"RIFF") && at(8, b"AVI "))
        || at(0, b"FLV\x01")
        || (head.len() > 188 && head[0] == 0x47 && head[188] == 0x47)
    {
        return Some(FileKind::Video);
    }
    if at(0, b"ID3")
        || at(0, &[0xff, 0xfb])
        || at(0, &[0xff, 0xf3])
        || at(0, &[0xff, 0xf2])
        || at(0, b"OggS")
        || at(0, b"fLaC")
        || (at(0, b"RIFF") && at(8, b"WAVE"))
    {
        return Some(FileKind::Audio);
    }
    let text = String::from_utf8_lossy(&head[..head.len().min(SNIFF_BYTES)]);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with("#EXTM3U")
        || (trimmed.starts_with("<?xml") || trimmed.starts_with("<MPD")) && text.contains("<MPD")
    {
        return Some(FileKind::Streaming);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip(first_entry: &str) -> Vec<u8> {
        let mut z = b"PK\x03\x04".to_vec();
        z.extend_from_slice(&[0u8; 22]);
        z.extend_from_slice(&(first_entry.len() as u16).to_le_bytes());
        z.extend_from_slice(&[0, 0]);
        z.extend_from_slice(first_entry.as_bytes());
        z
    }

    #[test]
    fn kinds_by_their_first_bytes() {
        let mut tar = vec![0u8; 300];
        tar[257..262].copy_from_slice(b"ustar");
        let mut ts = vec![0u8; 400];
        ts[0] = 0x47;
        ts[188] = 0x47;
        let table: Vec<(Vec<u8>, &str, Option<FileKind>)> = vec![
            (
                b"MZ\x90\x00".to_vec(),
                "/report.pdf",
                Some(FileKind::Executable),
            ),
            (
                b"MZ\x90\x00".to_vec(),
                "/ChromeSetup.exe",
                Some(FileKind::Installer),
            ),
            (b"\x7fELF\x02".to_vec(), "/a", Some(FileKind::Executable)),
            (
                b"d8:announce35:udp://".to_vec(),
                "/x.pdf",
                Some(FileKind::Torrent),
            ),
            (zip("notes.txt"), "/a.zip", Some(FileKind::Archive)),
            (zip("[Content_Types].xml"), "/essay.docx", None),
            (zip("mimetype"), "/book.epub", None),
            (
                zip("AndroidManifest.xml"),
                "/game.apk",
                Some(FileKind::Installer),
            ),
            (b"Rar!\x1a\x07\x00".to_vec(), "/a", Some(FileKind::Archive)),
            (tar, "/a", Some(FileKind::Archive)),
            (
                b"\x00\x00\x00\x20ftypisom".to_vec(),
                "/v",
                Some(FileKind::Video),
            ),
            (
                b"\x00\x00\x00\x20ftypM4A ".to_vec(),
                "/a",
                Some(FileKind::Audio),
            ),
            (
                b"\x1a\x45\xdf\xa3".to_vec(),
                "/v.webm",
                Some(FileKind::Video),
            ),
            (ts, "/seg.ts", Some(FileKind::Video)),
            (b"ID3\x03".to_vec(), "/song", Some(FileKind::Audio)),
            (
                b"#EXTM3U\n#EXT-X-VERSION:3".to_vec(),
                "/live.m3u8",
                Some(FileKind::Streaming),
            ),
            (
                b"<?xml version=\"1.0\"?><MPD xmlns=".to_vec(),
                "/m.mpd",
                Some(FileKind::Streaming),
            ),
            (b"%PDF-1.7".to_vec(), "/report.pdf", None),
            (b"<!doctype html>".to_vec(), "/", None),
            (b"\x89PNG\r\n".to_vec(), "/a.png", None),
            (
                vec![0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1],
                "/old.doc",
                None,
            ),
            (
                vec![0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1],
                "/tool.msi",
                Some(FileKind::Installer),
            ),
            (b"conectix".to_vec(), "/disk.vhd", Some(FileKind::DiskImage)),
            (vec![], "/", None),
        ];
        for (head, path, want) in table {
            assert_eq!(
                sniff(&head, path),
                want,
                "{path} {:?}",
                &head[..head.len().min(8)]
            );
        }
        for k in FileKind::ALL {
            assert_eq!(FileKind::from_name(k.name()), Some(k));
            assert_eq!(FileKind::ALL[k.index()], k);
        }
    }
}

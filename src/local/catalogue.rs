//! The models the local engine can download: the rembg project's ONNX
//! exports, with what each needs to be fed exactly as rembg feeds it, so a
//! cut-out made here matches one made with rembg.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The architecture a model belongs to, which decides how an image is
/// prepared for it and how its answer becomes a mask. An imported model
/// names its family so Cutout can feed it correctly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFamily {
    /// U²-Net and its derivatives (u2netp, u2net_human_seg, silueta): 320².
    U2net,
    /// IS-Net (DIS): 1024², mean only, no division by a deviation.
    Isnet,
    /// BiRefNet: 1024², logits that need a sigmoid.
    Birefnet,
}

impl ModelFamily {
    /// Every family, in the order offered to users.
    pub const ALL: [ModelFamily; 3] = [
        ModelFamily::U2net,
        ModelFamily::Isnet,
        ModelFamily::Birefnet,
    ];

    /// The id typed after `--model-family`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelFamily::U2net => "u2net",
            ModelFamily::Isnet => "isnet",
            ModelFamily::Birefnet => "birefnet",
        }
    }

    /// The family's name as its authors write it.
    pub fn display_name(self) -> &'static str {
        match self {
            ModelFamily::U2net => "U²-Net",
            ModelFamily::Isnet => "IS-Net",
            ModelFamily::Birefnet => "BiRefNet",
        }
    }

    /// How rembg prepares images for this family and reads its answer.
    pub const fn preprocess(self) -> Preprocess {
        match self {
            ModelFamily::U2net => Preprocess {
                size_px: 320,
                mean: IMAGENET_MEAN,
                std: IMAGENET_STD,
                sigmoid: false,
            },
            ModelFamily::Isnet => Preprocess {
                size_px: 1024,
                mean: IMAGENET_MEAN,
                std: [1.0, 1.0, 1.0],
                sigmoid: false,
            },
            ModelFamily::Birefnet => Preprocess {
                size_px: 1024,
                mean: IMAGENET_MEAN,
                std: IMAGENET_STD,
                sigmoid: true,
            },
        }
    }
}

impl fmt::Display for ModelFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ModelFamily {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s
            .trim()
            .to_lowercase()
            .replace('²', "2")
            .replace(['-', '_'], "");
        ModelFamily::ALL
            .into_iter()
            .find(|family| family.as_str() == wanted)
            .ok_or_else(|| {
                format!("unknown model family `{s}`; choose one of u2net, isnet, birefnet")
            })
    }
}

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// How an image becomes the model's input and its output becomes a mask,
/// as rembg does it: RGB, Lanczos resize to `size_px`², divide by the
/// image's maximum, `(x - mean) / std` per channel, NCHW float32; first
/// output, channel 0, optional sigmoid, min–max rescale, Lanczos back up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Preprocess {
    /// The square input side the model was exported for.
    pub size_px: u32,
    /// Per-channel mean subtracted after scaling to 0–1.
    pub mean: [f32; 3],
    /// Per-channel deviation divided by after the mean.
    pub std: [f32; 3],
    /// Whether the output is logits that need a sigmoid before rescaling.
    pub sigmoid: bool,
}

/// How a downloaded file is checked: the digest the rembg project
/// publishes for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "algorithm", content = "hex", rename_all = "lowercase")]
pub enum Checksum {
    /// MD5, which is what rembg publishes for most models.
    Md5(&'static str),
    /// SHA-256.
    Sha256(&'static str),
}

/// One downloadable model.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CatalogueModel {
    /// The id typed after `--model` and shown in pickers.
    pub id: &'static str,
    /// Its architecture.
    pub family: ModelFamily,
    /// How to feed it; the family's, except where rembg does otherwise.
    pub preprocess: Preprocess,
    /// The file's name under the models base URL.
    pub file_name: &'static str,
    /// The published digest of the file.
    pub checksum: Checksum,
    /// About how big the download is, for "Download (176 MB)" before the
    /// server says exactly.
    pub approx_bytes: u64,
    /// What it is good for, in a line.
    pub good_for: &'static str,
    /// The weights' licence, as an SPDX id.
    pub licence: &'static str,
    /// Whether the licence forbids commercial use; such models are listed
    /// only when asked for and never chosen by default.
    pub non_commercial: bool,
}

/// The rembg project's release that hosts every model below.
pub const DEFAULT_MODELS_URL: &str =
    "https://github.com/danielgatis/rembg/releases/download/v0.0.0/";

/// The model a new user gets: sharp edges on products at about two seconds
/// an image on a laptop CPU.
pub const DEFAULT_MODEL: &str = "isnet-general-use";

const MB: u64 = 1_000_000;

/// Every model Cutout knows how to download, default first. Checksums and
/// file names are the ones rembg pins; licences are those of the weights'
/// authors.
pub static CATALOGUE: &[CatalogueModel] = &[
    CatalogueModel {
        id: "isnet-general-use",
        family: ModelFamily::Isnet,
        preprocess: ModelFamily::Isnet.preprocess(),
        file_name: "isnet-general-use.onnx",
        checksum: Checksum::Md5("fc16ebd8b0c10d971d3513d564d01e29"),
        approx_bytes: 179 * MB,
        good_for: "Products and everyday photos: finer edges than U²-Net, about 2 s an image",
        licence: "Apache-2.0",
        non_commercial: false,
    },
    CatalogueModel {
        id: "u2netp",
        family: ModelFamily::U2net,
        preprocess: ModelFamily::U2net.preprocess(),
        file_name: "u2netp.onnx",
        checksum: Checksum::Md5("8e83ca70e441ab06c318d82300c84806"),
        approx_bytes: 5 * MB,
        good_for: "Small and fast: quick drafts and simple shapes; soft, rough edges",
        licence: "Apache-2.0",
        non_commercial: false,
    },
    CatalogueModel {
        id: "u2net",
        family: ModelFamily::U2net,
        preprocess: ModelFamily::U2net.preprocess(),
        file_name: "u2net.onnx",
        checksum: Checksum::Md5("60024c5c889badc19c04ad937298a77b"),
        approx_bytes: 176 * MB,
        good_for: "General use: rembg's classic default",
        licence: "Apache-2.0",
        non_commercial: false,
    },
    CatalogueModel {
        id: "u2net_human_seg",
        family: ModelFamily::U2net,
        preprocess: ModelFamily::U2net.preprocess(),
        file_name: "u2net_human_seg.onnx",
        checksum: Checksum::Md5("c09ddc2e0104f800e3e1bb4652583d1f"),
        approx_bytes: 176 * MB,
        good_for: "People: portraits and full-body shots",
        licence: "Apache-2.0",
        non_commercial: false,
    },
    CatalogueModel {
        id: "silueta",
        family: ModelFamily::U2net,
        preprocess: ModelFamily::U2net.preprocess(),
        file_name: "silueta.onnx",
        checksum: Checksum::Md5("55e59e0d8062d2f5d013f4725ee84782"),
        approx_bytes: 44 * MB,
        good_for: "Like U²-Net at a quarter of the download",
        licence: "Apache-2.0",
        non_commercial: false,
    },
    CatalogueModel {
        id: "isnet-anime",
        family: ModelFamily::Isnet,
        preprocess: ModelFamily::Isnet.preprocess(),
        file_name: "isnet-anime.onnx",
        checksum: Checksum::Md5("6f184e756bb3bd901c8849220a83e38e"),
        approx_bytes: 176 * MB,
        good_for: "Anime and illustrated characters",
        licence: "Apache-2.0",
        non_commercial: false,
    },
    CatalogueModel {
        id: "birefnet-general-lite",
        family: ModelFamily::Birefnet,
        preprocess: ModelFamily::Birefnet.preprocess(),
        file_name: "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
        checksum: Checksum::Md5("4fab47adc4ff364be1713e97b7e66334"),
        approx_bytes: 224 * MB,
        good_for: "Clean edges on hair and fur at moderate cost",
        licence: "MIT",
        non_commercial: false,
    },
    CatalogueModel {
        id: "birefnet-general",
        family: ModelFamily::Birefnet,
        preprocess: ModelFamily::Birefnet.preprocess(),
        file_name: "BiRefNet-general-epoch_244.onnx",
        checksum: Checksum::Md5("7a35a0141cbbc80de11d9c9a28f52697"),
        approx_bytes: 973 * MB,
        good_for: "The finest edges (hair, fur, lace, glass); large and slow",
        licence: "MIT",
        non_commercial: false,
    },
    CatalogueModel {
        id: "bria-rmbg",
        family: ModelFamily::Birefnet,
        // rembg feeds RMBG 2.0 like BiRefNet but reads its output as it is:
        // the export already ends in a sigmoid.
        preprocess: Preprocess {
            size_px: 1024,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            sigmoid: false,
        },
        file_name: "bria-rmbg-2.0.onnx",
        checksum: Checksum::Sha256(
            "5b486f08200f513f460da46dd701db5fbb47d79b4be4b708a19444bcd4e79958",
        ),
        approx_bytes: 977 * MB,
        good_for: "Top quality on products and people; non-commercial use only",
        licence: "CC-BY-NC-4.0",
        non_commercial: true,
    },
];

/// The catalogue entry with this id.
pub fn find(id: &str) -> Option<&'static CatalogueModel> {
    CATALOGUE.iter().find(|model| model.id == id)
}

/// The models offered without asking: those whose licence allows
/// commercial use.
pub fn offered() -> impl Iterator<Item = &'static CatalogueModel> {
    CATALOGUE.iter().filter(|model| !model.non_commercial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_is_fed_with_rembgs_numbers() {
        let u2net = ModelFamily::U2net.preprocess();
        assert_eq!(
            (u2net.size_px, u2net.std, u2net.sigmoid),
            (320, IMAGENET_STD, false)
        );
        let isnet = ModelFamily::Isnet.preprocess();
        assert_eq!(
            (isnet.size_px, isnet.std, isnet.sigmoid),
            (1024, [1.0; 3], false)
        );
        let birefnet = ModelFamily::Birefnet.preprocess();
        assert_eq!(
            (birefnet.size_px, birefnet.std, birefnet.sigmoid),
            (1024, IMAGENET_STD, true)
        );
        for family in ModelFamily::ALL {
            assert_eq!(family.preprocess().mean, IMAGENET_MEAN);
        }
        // rembg reads RMBG 2.0's output as it is: its export ends in a sigmoid.
        let bria = find("bria-rmbg").unwrap().preprocess;
        assert_eq!((bria.size_px, bria.sigmoid), (1024, false));
    }

    #[test]
    fn the_default_model_is_offered_first_and_allows_commercial_use() {
        let first = offered().next().unwrap();
        assert_eq!(first.id, DEFAULT_MODEL);
        assert!(!first.non_commercial);
    }

    #[test]
    fn non_commercial_models_are_not_offered() {
        assert!(offered().all(|model| model.id != "bria-rmbg"));
        assert!(find("bria-rmbg").unwrap().non_commercial);
    }

    #[test]
    fn ids_are_unique_and_checksums_are_hex_of_the_right_length() {
        let mut ids: Vec<_> = CATALOGUE.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CATALOGUE.len());
        for model in CATALOGUE {
            let (hex, len) = match model.checksum {
                Checksum::Md5(hex) => (hex, 32),
                Checksum::Sha256(hex) => (hex, 64),
            };
            assert_eq!(hex.len(), len, "{}", model.id);
            assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{}", model.id);
        }
    }

    #[test]
    fn families_parse_from_what_users_type() {
        assert_eq!("U2Net".parse::<ModelFamily>(), Ok(ModelFamily::U2net));
        assert_eq!("U²-Net".parse::<ModelFamily>(), Ok(ModelFamily::U2net));
        assert_eq!("is-net".parse::<ModelFamily>(), Ok(ModelFamily::Isnet));
        assert_eq!("birefnet".parse::<ModelFamily>(), Ok(ModelFamily::Birefnet));
        assert!(
            "sam"
                .parse::<ModelFamily>()
                .unwrap_err()
                .contains("u2net, isnet, birefnet")
        );
    }
}
